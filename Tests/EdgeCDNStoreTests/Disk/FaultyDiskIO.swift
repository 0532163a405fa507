import Synchronization

@testable import EdgeCDNStore

#if canImport(Glibc)
  import Glibc
#endif

/// A cache file that fails on command: the faults a disk shows (full, failing, short reads).
final class FaultyDiskIO: DiskIO {
  struct Faults: Sendable {
    var writeErrno: Int32?
    var readErrno: Int32?
    var syncErrno: Int32?
    /// Reads return at most this many bytes.
    var shortReadLimit: Int?
    /// Writes that carry an end marker sleep this long first, so that they land after
    /// writes issued later unless the store orders them: buffered writes of exactly one
    /// record header's size, and direct writes of at most two blocks (a flush's last
    /// partial block, marker included).
    var endMarkerDelayMicroseconds: UInt32?
  }

  let base: FileDiskIO
  let faults = Mutex(Faults())
  var path: String { base.path }

  /// `direct`: region writes go through `writeDirect` (O_DIRECT) when the file system
  /// takes it, as the store's own file does.
  init(path: String, direct: Bool = false) throws {
    base = try FileDiskIO(path: path, direct: direct)
  }

  var directBlockSize: Int? { base.directBlockSize }

  func writeDirect(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CacheError) {
    let f = faults.withLock { $0 }
    if let code = f.writeErrno {
      throw .io(key: nil, operation: "pwrite", path: path, errno: code)
    }
    if let delay = f.endMarkerDelayMicroseconds, bytes.count <= 2 * FileDiskIO.blockSize {
      usleep(delay)
    }
    try base.writeDirect(bytes, at: offset)
  }

  func set(_ change: (inout Faults) -> Void) { faults.withLock { change(&$0) } }

  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(CacheError) -> Int {
    let f = faults.withLock { $0 }
    if let code = f.readErrno { throw .io(key: nil, operation: "pread", path: path, errno: code) }
    if let limit = f.shortReadLimit, buffer.count > limit {
      return try base.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<limit]), at: offset)
    }
    return try base.read(into: buffer, at: offset)
  }

  func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CacheError) {
    let f = faults.withLock { $0 }
    if let code = f.writeErrno {
      throw .io(key: nil, operation: "pwrite", path: path, errno: code)
    }
    if let delay = f.endMarkerDelayMicroseconds, bytes.count == RecordFormat.recordHeaderSize {
      usleep(delay)
    }
    try base.write(bytes, at: offset)
  }

  func sync() throws(CacheError) {
    if let code = faults.withLock({ $0.syncErrno }) {
      throw .io(key: nil, operation: "fdatasync", path: path, errno: code)
    }
    try base.sync()
  }

  func size() throws(CacheError) -> Int { try base.size() }
  func allocate(size: Int) throws(CacheError) { try base.allocate(size: size) }
  func close() { base.close() }
}
