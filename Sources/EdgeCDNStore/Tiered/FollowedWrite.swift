import NIOCore

/// A reader of a client write in progress: it reads RAM's copy as it comes and, if the
/// write leaves RAM midway while disk goes on (`DiskHandoff`), reads the rest from disk,
/// from the byte it had reached.
///
/// On disk it follows the write by disk's tag, a fragment at a time as disk appends them
/// (`DiskWriteProgress`). A disk tier without tags is read once it commits: the reader
/// then waits for the whole body to reach disk before its next byte.
struct FollowedWrite<Memory: Storage, Disk: Storage>: Sendable {
  private var memory: Memory.Hit?
  private var disk: Disk.Hit?
  private let diskTier: Disk
  private let handoff: DiskHandoff
  private let key: CacheKey
  /// Bytes of the body read so far, and the end of the range asked for, if any: where
  /// disk's read starts and ends after a handoff.
  private var position = 0
  private var end: Int?
  /// Set when the handoff found the reader already at the end of the body.
  private var atEnd = false

  /// A reader that starts in RAM, or with nil, one that starts on disk (`onDisk`).
  init(memory: Memory.Hit?, diskTier: Disk, handoff: DiskHandoff, key: CacheKey) {
    self.memory = memory
    self.diskTier = diskTier
    self.handoff = handoff
    self.key = key
  }

  /// A reader of a write that had already left RAM: it starts on disk once the write
  /// commits there; nil when it failed or disk now holds another version.
  init?(onDisk diskTier: Disk, handoff: DiskHandoff, key: CacheKey) async throws(CacheError) {
    self.init(memory: nil, diskTier: diskTier, handoff: handoff, key: key)
    guard try await followDisk() else { return nil }
  }

  var canSeek: Bool { memory?.canSeek ?? disk?.canSeek ?? false }
  var evictionWeight: Int { memory?.evictionWeight ?? disk?.evictionWeight ?? 0 }
  var shouldCountAccess: Bool { memory?.shouldCountAccess ?? disk?.shouldCountAccess ?? true }

  mutating func readBody() async throws(CacheError) -> ByteBuffer? {
    if memory != nil {
      do {
        let chunk = try await memory?.readBody()
        position += chunk?.readableBytes ?? 0
        return chunk
      } catch {
        try await leaveMemory(after: error)
      }
    }
    if atEnd { return nil }
    return try await disk?.readBody()
  }

  mutating func seek(start: Int, end: Int?, multipart: Bool) async throws(CacheError) {
    if memory != nil {
      position = start
      self.end = end
      do {
        if multipart {
          try await memory?.seekMultipart(start: start, end: end)
        } else {
          try await memory?.seek(start: start, end: end)
        }
      } catch {
        // The seek waited for bytes RAM will not get: disk's read starts at the range,
        // and a range past the body fails there, with disk's error.
        try await leaveMemory(after: error, seeking: true)
      }
      return
    }
    atEnd = false
    if multipart {
      try await disk?.seekMultipart(start: start, end: end)
    } else {
      try await disk?.seek(start: start, end: end)
    }
  }

  mutating func finish() async throws(CacheError) {
    var failure: CacheError?
    do { try await memory?.finish() } catch { failure = error }
    do { try await disk?.finish() } catch { failure = failure ?? error }
    if let failure { throw failure }
  }

  /// RAM's read failed: when that is the write leaving RAM and disk goes on with it, the
  /// read goes on from disk; otherwise the RAM error stands. RAM's handler is let go
  /// first.
  private mutating func leaveMemory(after error: CacheError, seeking: Bool = false) async throws(CacheError) {
    try? await memory?.finish()
    memory = nil
    guard case .writerFailed = error, try await followDisk(seeking: seeking) else { throw error }
  }

  /// Goes on with disk's write at the reader's position: following it by its tag while
  /// it is in progress or just committed, or else once it commits (the wait lasts as long
  /// as the rest of the body takes to reach disk). False when disk's write failed or disk
  /// now holds another version (a newer write of the key committed after this one).
  private mutating func followDisk(seeking: Bool = false) async throws(CacheError) -> Bool {
    if let tag = handoff.diskTag, let hit = try await diskTier.lookupStreamingWrite(key, tag: tag) {
      return try await open(hit, seeking: seeking)
    }
    guard await handoff.diskCommitted(), let hit = try await diskTier.lookup(key) else { return false }
    return try await open(hit, seeking: seeking)
  }

  /// Reads on from `hit` at the reader's position when it is this write's.
  private mutating func open(_ hit: CacheHit<Disk.Hit>, seeking: Bool) async throws(CacheError) -> Bool {
    var handler = hit.handler
    guard hit.meta == handoff.meta else {
      try? await handler.finish()
      return false
    }
    if position > 0 || end != nil {
      do {
        try await handler.seek(start: position, end: end)
      } catch .invalidRange where position > 0 && !seeking {
        // RAM had given every byte before its write failed (at its commit, say).
        atEnd = true
      } catch {
        try? await handler.finish()
        throw error
      }
    }
    disk = handler
    return true
  }
}
