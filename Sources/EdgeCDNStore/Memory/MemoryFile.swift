import NIOCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Anonymous RAM files (Linux `memfd_create`) holding committed large bodies, so a hit
/// is sent with sendfile from the file's pages instead of copied from our buffers into
/// the socket (for a 1 MiB hit that copy was about half the CPU).
///
/// Written once, at commit, from the chunks the fill kept; never written again, so the
/// pages a socket still references after sendfile returned stay correct. Blocking calls
/// on the caller's thread on purpose: a memfd write or read is a memory copy, as costly
/// as copying the chunks would be, and never waits for a device.
enum MemoryFile {
  /// Why creation failed: the caller keeps the body in its buffers and counts it.
  struct Failure: Error {
    var operation: String
    var errno: Int32
  }

  /// glibc declares `memfd_create` only under _GNU_SOURCE, which Swift's Glibc module does
  /// not set: looked up once by name (glibc 2.27 and later have it).
  private typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, CUnsignedInt) -> CInt
  private static let memfdCreate: MemfdCreate? = {
    #if os(Linux)
      guard let symbol = dlsym(nil, "memfd_create") else { return nil }
      return unsafeBitCast(symbol, to: MemfdCreate.self)
    #else
      return nil
    #endif
  }()
  private static let closeOnExec: CUnsignedInt = 1  // MFD_CLOEXEC

  /// A new RAM file holding `chunks`' readable bytes, in order.
  static func make(holding chunks: [ByteBuffer]) throws(Failure) -> SharedDescriptor {
    guard let memfdCreate else { throw Failure(operation: "memfd_create (not available)", errno: ENOSYS) }
    let fd = memfdCreate("edge-cdn-body", closeOnExec)
    guard fd >= 0 else { throw Failure(operation: "memfd_create", errno: errno) }
    // Owned from here: a failed write closes it.
    let file = SharedDescriptor(owning: fd)
    var offset = 0
    for chunk in chunks {
      let failed = chunk.withUnsafeReadableBytes { raw -> Int32? in
        guard let base = raw.baseAddress else { return nil }
        var done = 0
        while done < raw.count {
          let n = pwrite(fd, base + done, raw.count - done, off_t(offset + done))
          if n < 0 {
            if errno == EINTR { continue }
            return errno
          }
          if n == 0 { return EIO }
          done += n
        }
        return nil
      }
      if let failed { throw Failure(operation: "pwrite", errno: failed) }
      offset += chunk.readableBytes
    }
    return file
  }
}
