@_spi(CustomByteBufferAllocator) public import NIOCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// ByteBuffers whose storage is exactly as large as their bytes.
///
/// Why: NIO rounds every allocation up to a power of two, so a 1,300-byte body kept in a
/// buffer of its own takes 2,048 bytes, and a body kept as it arrived pins the socket read
/// buffer it is a slice of. A cache holds its objects for hours: the bytes are copied once
/// into storage of their size (malloc'd and handed to NIO, which frees it with `free`, the
/// default allocator's deallocator).
public enum ExactBuffer {
  private static let allocator = ByteBufferAllocator()

  /// One buffer holding the readable bytes of `chunks`, in order.
  public static func joining(_ chunks: [ByteBuffer]) -> ByteBuffer {
    let size = chunks.reduce(0) { $0 + $1.readableBytes }
    guard size > 0, let memory = malloc(size) else {
      var buffer = ByteBuffer()
      for chunk in chunks { buffer.writeImmutableBuffer(chunk) }
      return buffer
    }
    var offset = 0
    for chunk in chunks {
      chunk.withUnsafeReadableBytes { bytes in
        if let base = bytes.baseAddress { (memory + offset).copyMemory(from: base, byteCount: bytes.count) }
      }
      offset += chunk.readableBytes
    }
    return ByteBuffer(
      takingOwnershipOf: UnsafeMutableRawBufferPointer(start: memory, count: size), allocator: allocator)
  }

  /// `buffer`'s readable bytes in exactly sized storage; `buffer` itself when it already is.
  public static func copy(_ buffer: ByteBuffer) -> ByteBuffer {
    isExact(buffer) ? buffer : joining([buffer])
  }

  /// Whether `buffer` is all of its storage.
  public static func isExact(_ buffer: ByteBuffer) -> Bool {
    buffer.storageCapacity == buffer.readableBytes
  }
}
