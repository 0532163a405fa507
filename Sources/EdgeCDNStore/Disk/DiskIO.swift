import NIOCore
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The few blocking calls the disk tier makes on its cache file. A protocol so tests can
/// inject faults (ENOSPC, EIO, short reads) between the store and the kernel.
///
/// Every method blocks: the store calls them only on NIO's thread pool
/// (`DurableFile.onIOThread`), never on the cooperative pool or an event loop. We use
/// NIOThreadPool rather than NIOFileSystem because the hot path is positional reads
/// and writes into buffers we own (region buffers, reads straight into a ByteBuffer):
/// one hop per call, no intermediate copies, and the same pool DurableFile uses.
protocol DiskIO: Sendable {
  var path: String { get }
  /// Reads up to `buffer.count` bytes at `offset`; returns the count read (short at end of file).
  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(CacheError) -> Int
  /// Writes all of `bytes` at `offset`.
  func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CacheError)
  /// The alignment (of offset, length and memory address) that `writeDirect` needs; nil
  /// when the file takes no direct writes, and region writes then go through `write`.
  var directBlockSize: Int? { get }
  /// Writes whole aligned blocks past the page cache (O_DIRECT): region writes, which
  /// would otherwise cost a kernel copy of every byte and leave the device's work to
  /// the next fdatasync instead of overlapping it with the filling of the next region.
  func writeDirect(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CacheError)
  func sync() throws(CacheError)
  /// Current size of the file.
  func size() throws(CacheError) -> Int
  /// Makes the file `size` bytes long, allocating blocks when the file system can, so a
  /// full disk shows at startup rather than in the middle of a region write.
  func allocate(size: Int) throws(CacheError)
  func close()
}

/// The real file: a descriptor and pread/pwrite/fdatasync, and a second descriptor
/// opened with O_DIRECT for region writes when the file system takes it.
///
/// Reads and small writes (region headers, the file header) stay buffered: reads of
/// recent objects then come from the page cache when the kernel has them, and the
/// kernel keeps both descriptors coherent (a direct write flushes and drops the cached
/// pages of its range).
final class FileDiskIO: DiskIO {
  let path: String
  private let fd: Int32
  /// -1 when direct writes are off or the file system refused O_DIRECT (tmpfs).
  private let directFD: Int32
  /// Cleared when a direct write fails with EINVAL (an alignment the file system wants
  /// larger than `blockSize`): region writes then go through the page cache.
  private let directWorks = Atomic<Bool>(true)
  /// Operations under way (in steps of 2) and whether `close()` was called (bit 0). The
  /// descriptors are closed once both hold, by `close()` or by the last operation, and an
  /// operation after `close()` fails: an operation racing `close()` (a fill still writing
  /// while the store shuts down) must never reach a descriptor number the process has
  /// since given to another file, such as a RAM body's memfd or a client's socket.
  private let users = Atomic<Int>(0)
  private let released = Atomic<Bool>(false)

  /// A multiple of every logical block size in use (512 or 4096) and of the page size.
  static let blockSize = 4096

  #if canImport(Glibc)
    #if arch(x86_64) || arch(i386)
      static let directFlag: Int32 = 0o40000
    #else
      static let directFlag: Int32 = 0o200000
    #endif
  #endif

  /// Opens (creating when missing) the file at `path`; `direct`: also open it for
  /// O_DIRECT region writes (Linux), quietly without when the file system refuses.
  init(path: String, direct: Bool = true) throws(CacheError) {
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .io(key: nil, operation: "open", path: path, errno: errno) }
    self.fd = fd
    self.path = path
    #if canImport(Glibc)
      self.directFD = direct ? open(path, O_WRONLY | O_CLOEXEC | Self.directFlag) : -1
    #else
      self.directFD = -1
    #endif
  }

  var directBlockSize: Int? {
    directFD >= 0 && directWorks.load(ordering: .relaxed) ? Self.blockSize : nil
  }

  func writeDirect(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CacheError) {
    try using("pwrite") { () throws(CacheError) in
      guard directFD >= 0, directWorks.load(ordering: .relaxed) else { return try write(bytes, at: offset) }
      let (done, failure) = Self.repeating(bytes.count) { done in
        pwrite(directFD, bytes.baseAddress.map { $0 + done }, bytes.count - done, off_t(offset + done))
      }
      if failure == EINVAL {
        directWorks.store(false, ordering: .relaxed)
        return try write(UnsafeRawBufferPointer(rebasing: bytes[done...]), at: offset + done)
      }
      try wrote(done, of: bytes.count, failure)
    }
  }

  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(CacheError) -> Int {
    try using("pread") { () throws(CacheError) in
      let (done, failure) = Self.repeating(buffer.count) { done in
        pread(fd, buffer.baseAddress.map { $0 + done }, buffer.count - done, off_t(offset + done))
      }
      if let failure { throw .io(key: nil, operation: "pread", path: path, errno: failure) }
      return done  // short at the end of the file
    }
  }

  func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CacheError) {
    try using("pwrite") { () throws(CacheError) in
      let (done, failure) = Self.repeating(bytes.count) { done in
        pwrite(fd, bytes.baseAddress.map { $0 + done }, bytes.count - done, off_t(offset + done))
      }
      try wrote(done, of: bytes.count, failure)
    }
  }

  /// Repeats `call` (one pread or pwrite of the rest, `done` bytes in) until `count` bytes
  /// went through, retrying EINTR; stops at a call that moved nothing (a read at the end
  /// of the file) or failed. Returns the bytes moved and the failed call's errno.
  private static func repeating(_ count: Int, _ call: (_ done: Int) -> Int) -> (done: Int, errno: Int32?) {
    var done = 0
    while done < count {
      let n = call(done)
      if n < 0 {
        if errno == EINTR { continue }
        return (done, errno)
      }
      if n == 0 { break }
      done += n
    }
    return (done, nil)
  }

  /// A write that failed, or stopped short (a pwrite that moved nothing: the loop used to
  /// spin on it), is an I/O error.
  private func wrote(_ done: Int, of count: Int, _ failure: Int32?) throws(CacheError) {
    guard failure == nil, done == count else {
      throw .io(key: nil, operation: "pwrite", path: path, errno: failure ?? EIO)
    }
  }

  func sync() throws(CacheError) {
    try using("fdatasync") { () throws(CacheError) in
      #if canImport(Glibc)
        let result = fdatasync(fd)
      #else
        let result = fsync(fd)
      #endif
      guard result == 0 else { throw .io(key: nil, operation: "fdatasync", path: path, errno: errno) }
    }
  }

  func size() throws(CacheError) -> Int {
    try using("fstat") { () throws(CacheError) in
      var info = stat()
      guard fstat(fd, &info) == 0 else { throw .io(key: nil, operation: "fstat", path: path, errno: errno) }
      return Int(info.st_size)
    }
  }

  func allocate(size: Int) throws(CacheError) {
    try using("ftruncate") { () throws(CacheError) in
      guard ftruncate(fd, off_t(size)) == 0 else {
        throw .io(key: nil, operation: "ftruncate", path: path, errno: errno)
      }
      #if canImport(Glibc)
        let result = posix_fallocate(fd, 0, off_t(size))
        // EOPNOTSUPP/EINVAL: the file system cannot preallocate; the sparse file still works.
        if result != 0 && result != EOPNOTSUPP && result != EINVAL {
          throw .io(key: nil, operation: "fallocate", path: path, errno: result)
        }
      #endif
    }
  }

  /// Runs one operation on the descriptors, unless `close()` was called.
  private func using<T>(_ operation: String, _ body: () throws(CacheError) -> T) throws(CacheError) -> T {
    let now = users.wrappingAdd(2, ordering: .acquiring).newValue
    defer { leave() }
    guard now & 1 == 0 else {
      throw .unavailable(tier: "disk", reason: "\(operation) on \(path) after the store was closed")
    }
    return try body()
  }

  private func leave() {
    if users.wrappingSubtract(2, ordering: .releasing).newValue == 1 { release() }
  }

  /// Closes once no operation is under way (else the last one closes); a store dropped
  /// without close() still gives its descriptors back.
  func close() {
    if users.bitwiseOr(1, ordering: .acquiringAndReleasing).oldValue == 0 { release() }
  }

  private func release() {
    guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
    _ = Glibc.close(fd)
    if directFD >= 0 { _ = Glibc.close(directFD) }
  }

  deinit { close() }
}

extension DiskIO {
  /// No direct writes unless the file says so (test doubles write through `write`).
  var directBlockSize: Int? { nil }

  func writeDirect(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CacheError) {
    try write(bytes, at: offset)
  }

  /// Up to `count` bytes at `offset`, as an array (shorter at the end of the file).
  func read(count: Int, at offset: Int) throws(CacheError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let result = bytes.withUnsafeMutableBytes { raw -> Result<Int, CacheError> in
      do throws(CacheError) { return .success(try read(into: raw, at: offset)) } catch { return .failure(error) }
    }
    bytes.removeLast(count - (try result.get()))
    return bytes
  }

  /// Up to `count` bytes at `offset`, read straight into a new ByteBuffer (shorter at
  /// the end of the file): what hit reads and region reads hand on without a copy.
  func readBuffer(count: Int, at offset: Int) throws(CacheError) -> ByteBuffer {
    var out = ByteBuffer()
    var failure: CacheError?
    out.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
      do throws(CacheError) {
        return try read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<count]), at: offset)
      } catch {
        failure = error
        return 0
      }
    }
    if let failure { throw failure }
    return out
  }

  func write(_ bytes: [UInt8], at offset: Int) throws(CacheError) {
    let result = bytes.withUnsafeBytes { raw -> Result<Void, CacheError> in
      do throws(CacheError) { return .success(try write(raw, at: offset)) } catch { return .failure(error) }
    }
    try result.get()
  }
}
