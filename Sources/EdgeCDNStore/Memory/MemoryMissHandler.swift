public import NIOCore
import Synchronization

/// Writes one object into RAM. Each chunk is charged to the store's byte budget
/// before it is kept, so the budget holds even while writes are in flight; the entry
/// and meta are charged up front, and the exact heap footprint at commit.
///
/// Released without `finish()`, the deinit aborts the write: nothing is committed,
/// the bytes are given back, and partial readers get `writerFailed`.
public final class MemoryMissHandler: MissHandler {
  private enum Phase {
    case open
    case eofWritten
    case finished
    case aborted
  }

  private struct State {
    var phase = Phase.open
    var bodyBytes = 0
    /// Bytes charged to the budget and not yet owned by a committed entry.
    var charged: Int
  }

  private let store: MemoryStore
  private let key: CacheKey
  private let meta: CacheMeta
  let object: MemoryObject
  private let state: Mutex<State>

  init(store: MemoryStore, key: CacheKey, meta: CacheMeta, object: MemoryObject, chargedUpFront: Int) {
    self.store = store
    self.key = key
    self.meta = meta
    self.object = object
    self.state = Mutex(State(charged: chargedUpFront))
  }

  deinit {
    let leftover = state.withLock { state -> Int? in
      guard state.phase == .open || state.phase == .eofWritten else { return nil }
      state.phase = .aborted
      return state.charged
    }
    if let leftover {
      store.abandonWrite(of: key, object: object, charged: leftover, reason: "miss handler released before finish()")
    }
  }

  public var streamingWriteTag: StreamingWriteTag? { object.tag }

  public func writeBody(_ data: ByteBuffer, eof: Bool) async throws(CacheError) {
    let size = data.readableBytes
    let admitted = state.withLock { state -> Result<Int, CacheError> in
      guard state.phase == .open else {
        return .failure(.invalidState(key: key.combinedHash, reason: "writeBody after eof, finish or abort"))
      }
      let total = state.bodyBytes + size
      if total > store.configuration.maxObjectSize {
        return .failure(.objectTooLarge(key: key.combinedHash, size: total, limit: store.configuration.maxObjectSize))
      }
      return .success(total)
    }
    let total: Int
    switch admitted {
    case .success(let bytes): total = bytes
    case .failure(let error):
      if case .objectTooLarge = error { await abort(reason: error.description) }
      throw error
    }
    // A small body is joined into one buffer at commit; a large one is kept as its chunks.
    let chunk = total > MemoryStore.joinLimit ? store.retainable(data) : data
    if size > 0 {
      do throws(CacheError) {
        try store.charge(size, for: key.combinedHash)
      } catch {
        await abort(reason: error.description)
        throw error
      }
    }
    let accepted = state.withLock { state -> Bool in
      guard state.phase == .open else { return false }
      state.bodyBytes += size
      state.charged += size
      if eof { state.phase = .eofWritten }
      return true
    }
    guard accepted else {
      store.release(size)
      throw .invalidState(key: key.combinedHash, reason: "write aborted concurrently")
    }
    object.append(chunk, eof: eof)
  }

  public func finish() async throws(CacheError) -> MissFinish {
    let charged = state.withLock { state -> Int? in
      guard state.phase == .open || state.phase == .eofWritten else { return nil }
      state.phase = .finished
      defer { state.charged = 0 }
      return state.charged
    }
    guard let charged else {
      throw .invalidState(key: key.combinedHash, reason: "finish after finish or abort")
    }
    object.complete()
    return .created(size: try store.commit(key: key, meta: meta, object: object, charged: charged))
  }

  public func abort(reason: String) async {
    let leftover = state.withLock { state -> Int? in
      guard state.phase == .open || state.phase == .eofWritten else { return nil }
      state.phase = .aborted
      defer { state.charged = 0 }
      return state.charged
    }
    if let leftover { store.abandonWrite(of: key, object: object, charged: leftover, reason: reason) }
  }
}
