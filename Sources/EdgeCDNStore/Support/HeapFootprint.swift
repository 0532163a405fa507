public import NIOCore

/// What values cost on the heap, as glibc's malloc lays allocations out: each one a
/// 16-byte-aligned chunk with an 8-byte header, at least 32 bytes. The RAM tier charges
/// its byte budget by this model, so that the budget counts what an object really holds
/// (its allocations), not only its body and meta bytes; the tests check the model against
/// `malloc_usable_size`.
///
/// Why a model and not `malloc_usable_size` itself: it is glibc's, costs a call per
/// allocation on the write path, and cannot reach a String's or a ByteBuffer's storage.
/// Other allocators round differently (macOS's in 16-byte quanta, no header): the model
/// is then an estimate within a few bytes per allocation.
public enum HeapFootprint {
  /// Swift's object header: metadata pointer and reference counts.
  public static let objectHeader = 16

  /// The chunk malloc uses for a request of `bytes`.
  @inlinable
  public static func allocation(_ bytes: Int) -> Int {
    bytes <= 0 ? 0 : max(32, (bytes + 8 + 15) & ~15)
  }

  /// A class instance with `storedBytes` of stored properties.
  @inlinable
  public static func object(storedBytes: Int) -> Int { allocation(objectHeader + storedBytes) }

  /// A String's storage: none for a small string (up to 15 UTF-8 bytes, held inline),
  /// else a native storage object (32-byte header, the bytes and a NUL).
  public static func string(_ text: String) -> Int {
    let count = text.utf8.count
    return count <= 15 ? 0 : allocation(32 + count + 1)
  }

  /// An array's storage (32-byte header and its capacity, which on Linux is what malloc
  /// gave it); none when empty, as empty arrays share one static storage.
  public static func array<Element>(_ array: [Element]) -> Int {
    array.capacity == 0 ? 0 : allocation(32 + MemoryLayout<Element>.stride * array.capacity)
  }

  /// A ByteBuffer's storage object: header, capacity, pointer and the allocator's four
  /// function pointers.
  public static let byteBufferStorageObject = allocation(objectHeader + 48)

  /// What a ByteBuffer pins: its whole storage (not only its readable bytes) and the
  /// storage object. Slices of one storage each count it whole: an upper bound.
  public static func byteBuffer(_ buffer: ByteBuffer) -> Int {
    buffer.storageCapacity == 0 ? 0 : allocation(buffer.storageCapacity) + byteBufferStorageObject
  }
}
