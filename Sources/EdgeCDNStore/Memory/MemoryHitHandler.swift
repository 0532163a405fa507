public import NIOCore
import Synchronization

/// Reads an object from RAM. Chunks are slices of the stored buffers: no copy. A body
/// kept in a RAM file is read with `pread`, a memory copy on the calling thread (it never
/// waits for a device), in pieces of `MemoryBody.fileReadBytes`; `fileBody` lets a caller
/// that can send a file region skip even that.
///
/// A complete object is read from a snapshot of its chunk list taken at lookup, with
/// no lock at all; an object still being written is read under its lock, chunk by
/// chunk, waiting for the writer when the reader catches up.
public struct MemoryHitHandler: HitHandler {
  let hash: CacheHash
  /// The write being read; nil for a committed object, whose body is the snapshot.
  let object: MemoryObject?
  /// Set once the body is known complete; from then on reads take no lock.
  private var snapshot: MemoryBody?
  private var position = 0
  private var end: Int?
  private var chunkHint = 0
  private var seeked = false
  public let evictionWeight: Int

  /// A write still in progress: one without a complete body yet.
  public var streamingWriteTag: StreamingWriteTag? { snapshot == nil ? object?.tag : nil }

  init(hash: CacheHash, object: MemoryObject?, snapshot: MemoryBody?, weight: Int) {
    self.hash = hash
    self.object = object
    self.snapshot = snapshot
    self.evictionWeight = weight
  }

  public mutating func readBody() async throws(CacheError) -> ByteBuffer? {
    while true {
      if let end, position >= end { return nil }
      if let snapshot {
        guard position < snapshot.size else { return nil }
        return try take(from: snapshot)
      }
      // Without a snapshot there is a write to read (see `MemoryStore.handler(for:)`).
      guard let object else { return nil }
      enum Step {
        case chunk(MemoryBody)
        case done(MemoryBody)
        case wait(Int)
        case failed(CacheError)
      }
      let position = self.position
      let step = object.state.withLock { state -> Step in
        switch state.phase {
        case .complete: return .done(state.body)
        case .failed(let error): return .failed(error)
        case .writing: return position < state.body.size ? .chunk(state.body) : .wait(state.body.size)
        }
      }
      switch step {
      case .done(let body):
        snapshot = body
      case .chunk(let body):
        // `body` is a copy of the array references only; we slice one chunk from it.
        return try take(from: body)
      case .wait(let size):
        try await object.waitForMore(than: size)
      case .failed(let error):
        throw error
      }
    }
  }

  private mutating func take(from body: MemoryBody) throws(CacheError) -> ByteBuffer {
    let limit = min(end ?? Int.max, body.size)
    let chunk: ByteBuffer
    if body.file != nil {
      do throws(CacheError) {
        chunk = try body.read(from: position, limit: limit)
      } catch {
        throw .corruptBody(key: hash, reason: "RAM file read failed: \(error)")
      }
    } else {
      chunk = body.slice(from: position, limit: limit, hint: &chunkHint)
    }
    position += chunk.readableBytes
    return chunk
  }

  public mutating func finish() async throws(CacheError) {}

  public var canSeek: Bool { true }

  /// Seeks within the body. On an object still being written, a start beyond what is
  /// written so far waits for the writer; the range is checked once the size is known.
  public mutating func seek(start: Int, end: Int?) async throws(CacheError) {
    guard start >= 0, end.map({ $0 > start }) ?? true else {
      throw .invalidRange(key: hash, start: start, end: end, bodySize: snapshot?.size ?? -1)
    }
    try await waitUntilWritten(past: start)
    if let snapshot, start >= snapshot.size {
      throw .invalidRange(key: hash, start: start, end: end, bodySize: snapshot.size)
    }
    position = start
    self.end = end
    seeked = true
  }

  /// Returns once byte `offset` is written or the body is complete (then `snapshot` is set).
  private mutating func waitUntilWritten(past offset: Int) async throws(CacheError) {
    while snapshot == nil, let object {
      enum Known { case complete(MemoryBody), written, wait(Int), failed(CacheError) }
      let known = object.state.withLock { state -> Known in
        switch state.phase {
        case .complete: .complete(state.body)
        case .failed(let error): .failed(error)
        case .writing: offset < state.body.size ? .written : .wait(state.body.size)
        }
      }
      switch known {
      case .complete(let body): snapshot = body
      case .written: return
      case .wait(let size): try await object.waitForMore(than: size)
      case .failed(let error): throw error
      }
    }
  }

  /// The rest of a complete file-backed body (from the position, up to the seeked end);
  /// nil while the body is in buffers or still being written.
  public mutating func takeFileBody() -> FileBody? {
    guard let snapshot, let file = snapshot.file, position < snapshot.size else { return nil }
    let limit = min(end ?? Int.max, snapshot.size)
    guard position < limit else { return nil }
    defer { position = limit }
    return FileBody(file: file, offset: position, length: limit - position)
  }

  /// A ranged read is not a full hit: it should not promote the object as one would.
  public var shouldCountAccess: Bool { !seeked }
}
