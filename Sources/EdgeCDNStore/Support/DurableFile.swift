import NIOPosix

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Whole-file reads and crash-safe replacement, for small state files (eviction
/// state, snapshots). Blocking POSIX calls, so callers run them on NIO's thread
/// pool (`DurableFile.onIOThread`), never on the cooperative pool or an event loop.
enum DurableFile {
  /// Replaces `path` with `bytes` so that a crash at any moment leaves either the old
  /// file or the new one: write a temporary file, fsync it, rename over, fsync the folder.
  static func replace(path: String, with bytes: [UInt8]) throws(CacheError) {
    let temporary = path + ".tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .io(key: nil, operation: "open", path: temporary, errno: errno) }
    var written = 0
    let failure: CacheError? = bytes.withUnsafeBytes { raw -> CacheError? in
      while written < raw.count {
        let n = write(fd, raw.baseAddress.map { $0 + written }, raw.count - written)
        if n < 0 {
          if errno == EINTR { continue }
          return .io(key: nil, operation: "write", path: temporary, errno: errno)
        }
        written += n
      }
      return nil
    }
    if let failure {
      close(fd)
      unlink(temporary)
      throw failure
    }
    guard fsync(fd) == 0 else {
      let code = errno
      close(fd)
      unlink(temporary)
      throw .io(key: nil, operation: "fsync", path: temporary, errno: code)
    }
    close(fd)
    guard rename(temporary, path) == 0 else {
      let code = errno
      unlink(temporary)
      throw .io(key: nil, operation: "rename", path: path, errno: code)
    }
    syncDirectory(of: path)
  }

  /// The whole file, or nil when it does not exist.
  static func readAll(path: String) throws(CacheError) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
      if errno == ENOENT { return nil }
      throw .io(key: nil, operation: "open", path: path, errno: errno)
    }
    defer { close(fd) }
    var result = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        throw .io(key: nil, operation: "read", path: path, errno: errno)
      }
      if n == 0 { return result }
      result.append(contentsOf: chunk[0..<n])
    }
  }

  /// Creates `directory` and its parents when missing.
  static func makeDirectory(_ directory: String) throws(CacheError) {
    var path = directory.hasPrefix("/") ? "" : "."
    for component in directory.split(separator: "/") {
      path += "/" + component
      if mkdir(path, 0o755) != 0 && errno != EEXIST {
        throw .io(key: nil, operation: "mkdir", path: path, errno: errno)
      }
    }
  }

  /// Runs blocking work on NIO's shared thread pool (or `pool`) and returns its result.
  static func onIOThread<T: Sendable>(
    pool: NIOThreadPool = .singleton, _ work: @escaping @Sendable () throws(CacheError) -> T
  ) async throws(CacheError) -> T {
    let result: Result<T, CacheError>
    do {
      result = try await pool.runIfActive { () -> Result<T, CacheError> in
        do throws(CacheError) { return .success(try work()) } catch { return .failure(error) }
      }
    } catch {
      throw .unavailable(tier: "io", reason: "thread pool: \(error)")
    }
    return try result.get()
  }

  private static func syncDirectory(of path: String) {
    let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    fsync(fd)
    close(fd)
  }
}
