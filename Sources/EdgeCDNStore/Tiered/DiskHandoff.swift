import Synchronization

/// Lets readers of a client write keep reading when the write leaves RAM midway while
/// disk goes on with it: they follow disk's write by its tag (`diskTag`), or, when the
/// disk tier cannot be read before a commit, wait for it to commit and read the rest from
/// there (`FollowedWrite`).
///
/// Why: readers of a write in progress read RAM's copy (`lookupStreamingWrite` names
/// the write by its RAM tag). A write leaves RAM when it grows past RAM's maximum object
/// size, which is only known as the bytes come, or when RAM's write fails; readers were
/// then cut at the byte where RAM stopped (a 1 MiB miss ended after 110 KiB with
/// `memory.maxObjectSize` at 512 KiB), although disk took the whole object.
///
/// One per client write that goes into both tiers, registered under the RAM write's tag
/// until the write ends, however it ends.
final class DiskHandoff: Sendable {
  enum Outcome: Sendable {
    case committed
    case failed
  }

  private struct State {
    var outcome: Outcome?
    var waiters: [UInt64: CheckedContinuation<Outcome, Never>] = [:]
    var nextWaiter: UInt64 = 0
  }

  let tag: StreamingWriteTag
  let key: CacheHash
  /// The meta the write stores, so that a reader takes disk's copy only if it is this
  /// write's and not a newer write's of the same key.
  let meta: CacheMeta
  /// Disk's tag for its half of the write, when the disk tier has tags.
  let diskTag: StreamingWriteTag?
  private let state = Mutex(State())
  private let registry: DiskHandoffs

  fileprivate init(
    tag: StreamingWriteTag, key: CacheHash, meta: CacheMeta, diskTag: StreamingWriteTag?, registry: DiskHandoffs
  ) {
    self.tag = tag
    self.key = key
    self.meta = meta
    self.diskTag = diskTag
    self.registry = registry
  }

  /// Disk's write ended. The first call counts; it wakes the readers waiting and takes
  /// the handoff out of the registry (readers holding it still see the outcome).
  func resolve(_ outcome: Outcome) {
    let waiters = state.withLock { state -> [UInt64: CheckedContinuation<Outcome, Never>]? in
      guard state.outcome == nil else { return nil }
      state.outcome = outcome
      defer { state.waiters = [:] }
      return state.waiters
    }
    guard let waiters else { return }
    registry.remove(self)
    for waiter in waiters.values { waiter.resume(returning: outcome) }
  }

  /// Readers waiting for disk's write now (for tests).
  var waitingReaders: Int { state.withLock { $0.waiters.count } }

  /// Suspends until disk's write ends; true when it committed. A cancelled reader
  /// returns false at once (it then fails as its RAM read did).
  func diskCommitted() async -> Bool {
    let id = state.withLock { state in
      defer { state.nextWaiter += 1 }
      return state.nextWaiter
    }
    let outcome: Outcome = await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
        let now = state.withLock { state -> Outcome? in
          if let outcome = state.outcome { return outcome }
          if Task.isCancelled { return .failed }
          state.waiters[id] = continuation
          return nil
        }
        if let now { continuation.resume(returning: now) }
      }
    } onCancel: {
      state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: .failed)
    }
    return outcome == .committed
  }
}

/// The handoffs of the client writes under way, by RAM tag, and the latest by key: a
/// request whose lookup no longer finds the write in RAM (it left) follows it on disk.
final class DiskHandoffs: Sendable {
  private struct Tables {
    var byTag: [StreamingWriteTag: DiskHandoff] = [:]
    var byKey: [CacheHash: DiskHandoff] = [:]
  }

  private let tables = Mutex(Tables())

  func register(
    _ tag: StreamingWriteTag, key: CacheHash, meta: CacheMeta, diskTag: StreamingWriteTag? = nil
  ) -> DiskHandoff {
    let handoff = DiskHandoff(tag: tag, key: key, meta: meta, diskTag: diskTag, registry: self)
    tables.withLock {
      $0.byTag[tag] = handoff
      $0.byKey[key] = handoff
    }
    return handoff
  }

  func handoff(for tag: StreamingWriteTag) -> DiskHandoff? { tables.withLock { $0.byTag[tag] } }

  /// The latest write of `key` under way.
  func handoff(forKey key: CacheHash) -> DiskHandoff? { tables.withLock { $0.byKey[key] } }

  /// Lookups by key no longer find the write under way (a purge); readers by tag do.
  func forget(key: CacheHash) {
    _ = tables.withLock { $0.byKey.removeValue(forKey: key) }
  }

  /// The writes under way that readers could follow onto disk (for tests).
  var count: Int { tables.withLock { $0.byTag.count } }

  fileprivate func remove(_ handoff: DiskHandoff) {
    tables.withLock { tables in
      if tables.byTag[handoff.tag] === handoff { tables.byTag[handoff.tag] = nil }
      if tables.byKey[handoff.key] === handoff { tables.byKey[handoff.key] = nil }
    }
  }
}
