import NIOCore
import Synchronization

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

  /// RAM files open now, in the whole process.
  private static let open = Atomic<Int>(0)
  static var openCount: Int { open.load(ordering: .relaxed) }

  /// At most half the open-file limit goes to RAM files: one per large body would
  /// otherwise take the descriptors that accepting clients and reaching the origin need
  /// (a cache full of 64 KiB bodies holds thousands), and fail them before falling back.
  /// Read at the first RAM file, after edge-cdn raised its limit at start, not per file.
  static let openFilesLimit = openLimit()

  static func openLimit() -> Int {
    guard let soft = FileDescriptorLimit.soft else { return 512 }
    return Int(min(soft, 1 << 30)) / 2
  }

  /// A new RAM file holding `chunks`' readable bytes, in order.
  static func make(holding chunks: [ByteBuffer], limit: Int = openFilesLimit) throws(Failure) -> SharedDescriptor {
    guard let memfdCreate else { throw Failure(operation: "memfd_create (not available)", errno: ENOSYS) }
    guard open.add(1, ordering: .relaxed).newValue <= limit else {
      open.subtract(1, ordering: .relaxed)
      throw Failure(operation: "memfd_create (half the open-file limit in RAM files)", errno: EMFILE)
    }
    let fd = memfdCreate("edge-cdn-body", closeOnExec)
    guard fd >= 0 else {
      let error = errno
      open.subtract(1, ordering: .relaxed)
      throw Failure(operation: "memfd_create", errno: error)
    }
    // Owned from here: a failed write closes it (and counts it closed).
    let file = SharedDescriptor(owning: fd, onClose: { open.subtract(1, ordering: .relaxed) })
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
