public import NIOCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A stored body the kernel can send from its own pages (sendfile), so a large hit costs
/// no copy from our buffers into the socket: bytes `offset..<offset + length` of `file`.
///
/// Why a descriptor and not a `NIOFileHandle`: NIO's handle admits one user at a time
/// (a second concurrent use throws EBUSY), and one stored body is sent by every event
/// loop at once. Each write takes its own `lease()`, a handle on the shared descriptor.
public struct FileBody: Sendable {
  /// Keeps the descriptor open while this body, a reader or a write in flight holds it.
  public let file: SharedDescriptor
  public let offset: Int
  public let length: Int

  public init(file: SharedDescriptor, offset: Int, length: Int) {
    self.file = file
    self.offset = offset
    self.length = length
  }

  /// A region for one write. Call `end()` once the write's promise completes (success or
  /// failure): until then the lease keeps the descriptor open.
  public func lease() -> FileBodyLease {
    FileBodyLease(file: file, offset: offset, length: length)
  }

  /// The bytes, read into memory (a consumer that cannot send a file region). Blocking:
  /// fine on any thread for a RAM-backed file (memfd), whose reads are memory copies.
  public func read() throws(CacheError) -> ByteBuffer {
    try file.read(at: offset, length: length)
  }
}

/// A file descriptor shared by every holder of a body and closed when the last goes.
/// Stored bodies are never written again once shared, so pages a socket still
/// references after a send stay correct.
public final class SharedDescriptor: Sendable {
  public let descriptor: CInt

  private let onClose: (@Sendable () -> Void)?

  /// Takes ownership of `descriptor`: it is closed in deinit, then `onClose` runs (its
  /// maker's count of open files).
  public init(owning descriptor: CInt, onClose: (@Sendable () -> Void)? = nil) {
    self.descriptor = descriptor
    self.onClose = onClose
  }

  deinit {
    _ = close(descriptor)
    onClose?()
  }

  /// `length` bytes from `offset`. A short read (the file shorter than the body) is
  /// reported as an I/O error, not returned short.
  public func read(at offset: Int, length: Int) throws(CacheError) -> ByteBuffer {
    var buffer = ByteBuffer()
    guard length > 0 else { return buffer }
    buffer.reserveCapacity(length)
    let descriptor = self.descriptor
    var failure: Int32?
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw -> Int in
      guard let base = raw.baseAddress else { return 0 }
      var done = 0
      while done < length {
        let n = pread(descriptor, base + done, length - done, off_t(offset + done))
        if n < 0 {
          if errno == EINTR { continue }
          failure = errno
          break
        }
        if n == 0 { break }
        done += n
      }
      return done
    }
    if let failure { throw .io(key: nil, operation: "pread", path: "fd \(descriptor)", errno: failure) }
    guard buffer.readableBytes == length else {
      throw .io(
        key: nil, operation: "pread (short: \(buffer.readableBytes) of \(length))", path: "fd \(descriptor)", errno: nil
      )
    }
    return buffer
  }
}

/// One write's hold on a `FileBody`: a `NIOFileHandle` of its own over the shared
/// descriptor (NIO's handles are single-user) and the descriptor's owner, kept alive
/// until `end()`.
public struct FileBodyLease: Sendable {
  public let region: FileRegion
  private let handle: NIOFileHandle
  private let file: SharedDescriptor

  init(file: SharedDescriptor, offset: Int, length: Int) {
    self.file = file
    self.handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: file.descriptor)
    self.region = FileRegion(fileHandle: handle, readerIndex: offset, endIndex: offset + length)
  }

  /// Gives the descriptor back to its owner (not closed: others use it) and lets the
  /// owner go. Call once, after the write completed.
  public func end() {
    _ = try? handle.takeDescriptorOwnership()
    withExtendedLifetime(file) {}
  }
}
