/// A fixed number of elements kept in place, each in its own 128-byte blocks, reached
/// through a pointer.
///
/// Why: a store's shards are read by every event loop on every hit. Held as class
/// instances in an array, each access copied a reference out (a retain and a release:
/// writes to the shard object's reference count, a line all those cores then take turns
/// owning), and small shard objects could share a line. Here nothing is copied and no two
/// elements share a line (nor the pair the prefetcher fetches together).
final class PaddedTable<Element: ~Copyable & Sendable>: @unchecked Sendable {
  // @unchecked: the memory is owned by this object, allocated once and never moved; the
  // elements are Sendable, and each is used in place (through its own locks or atomics).

  let count: Int
  private let base: UnsafeMutableRawPointer
  private let stride: Int
  private static var blockBytes: Int { 128 }

  init(count: Int, _ make: (Int) -> Element) {
    precondition(count > 0, "a PaddedTable holds at least one element")
    self.count = count
    let size = max(1, MemoryLayout<Element>.stride)
    stride = (size + Self.blockBytes - 1) / Self.blockBytes * Self.blockBytes
    base = UnsafeMutableRawPointer.allocate(
      byteCount: stride * count, alignment: max(Self.blockBytes, MemoryLayout<Element>.alignment))
    for index in 0..<count {
      (base + index * stride).bindMemory(to: Element.self, capacity: 1).initialize(to: make(index))
    }
  }

  deinit {
    for index in 0..<count { pointer(index).deinitialize(count: 1) }
    base.deallocate()
  }

  /// The element at `index` (0..<count), in place.
  @inline(__always)
  func pointer(_ index: Int) -> UnsafeMutablePointer<Element> {
    (base + index * stride).assumingMemoryBound(to: Element.self)
  }
}
