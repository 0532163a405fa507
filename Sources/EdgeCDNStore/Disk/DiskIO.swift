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
  func sync() throws(CacheError)
  /// Current size of the file.
  func size() throws(CacheError) -> Int
  /// Makes the file `size` bytes long, allocating blocks when the file system can, so a
  /// full disk shows at startup rather than in the middle of a region write.
  func allocate(size: Int) throws(CacheError)
  func close()
}

/// The real file: a descriptor and pread/pwrite/fdatasync.
final class FileDiskIO: DiskIO {
  let path: String
  private let fd: Int32

  /// Opens (creating when missing) the file at `path`.
  init(path: String) throws(CacheError) {
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .io(key: nil, operation: "open", path: path, errno: errno) }
    self.fd = fd
    self.path = path
  }

  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(CacheError) -> Int {
    var done = 0
    while done < buffer.count {
      let n = pread(fd, buffer.baseAddress.map { $0 + done }, buffer.count - done, off_t(offset + done))
      if n < 0 {
        if errno == EINTR { continue }
        throw .io(key: nil, operation: "pread", path: path, errno: errno)
      }
      if n == 0 { break }
      done += n
    }
    return done
  }

  func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CacheError) {
    var done = 0
    while done < bytes.count {
      let n = pwrite(fd, bytes.baseAddress.map { $0 + done }, bytes.count - done, off_t(offset + done))
      if n < 0 {
        if errno == EINTR { continue }
        throw .io(key: nil, operation: "pwrite", path: path, errno: errno)
      }
      done += n
    }
  }

  func sync() throws(CacheError) {
    #if canImport(Glibc)
      let result = fdatasync(fd)
    #else
      let result = fsync(fd)
    #endif
    guard result == 0 else { throw .io(key: nil, operation: "fdatasync", path: path, errno: errno) }
  }

  func size() throws(CacheError) -> Int {
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw .io(key: nil, operation: "fstat", path: path, errno: errno) }
    return Int(info.st_size)
  }

  func allocate(size: Int) throws(CacheError) {
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

  func close() {
    _ = Glibc.close(fd)
  }
}

extension DiskIO {
  /// Up to `count` bytes at `offset`, as an array (shorter at the end of the file).
  func read(count: Int, at offset: Int) throws(CacheError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let result = bytes.withUnsafeMutableBytes { raw -> Result<Int, CacheError> in
      do throws(CacheError) { return .success(try read(into: raw, at: offset)) } catch { return .failure(error) }
    }
    bytes.removeLast(count - (try result.get()))
    return bytes
  }

  func write(_ bytes: [UInt8], at offset: Int) throws(CacheError) {
    let result = bytes.withUnsafeBytes { raw -> Result<Void, CacheError> in
      do throws(CacheError) { return .success(try write(raw, at: offset)) } catch { return .failure(error) }
    }
    try result.get()
  }
}
