public import Logging
import NIOCore
import Synchronization

/// The RAM tier: objects held as the `ByteBuffer`s they arrived in, in a sharded
/// index, within a hard byte budget.
///
/// - Concurrency: the index is split into shards, each behind a `Mutex`; a hit takes
///   one shard lock to find the object and none to read a complete body. The budget
///   is one atomic, charged per chunk with compare-and-swap. No actor, no global lock.
/// - Budget: every chunk is charged before it is kept, so the budget is never
///   exceeded, in-flight writes included. When a charge does not fit, the embedded
///   eviction manager names victims, they are removed and reported to the observer.
/// - Streaming partial writes: a write in progress is visible to lookups (preferred
///   over the committed object, as pingora does, so a refresh is seen at once), and
///   its readers wait for the writer without polling.
public final class MemoryStore: Storage {
  public typealias Hit = MemoryHitHandler
  public typealias Miss = MemoryMissHandler

  public static let tierName = "memory"

  public let configuration: MemoryStoreConfiguration
  /// Chooses what leaves when the budget is full; tracks every committed object.
  public let evictionManager: any EvictionManager
  private let observer: (any StorageObserver)?
  private let shards: [Shard]
  private let charged = Atomic<Int>(0)
  private let objects = Atomic<Int>(0)
  /// Weight of committed objects; `charged` minus this is held by writes in flight.
  private let committedWeight = Atomic<Int>(0)
  private let logger: Logger
  private let nextTag = Atomic<UInt64>(0)
  private let allocator = ByteBufferAllocator()

  /// One stored or in-progress object. A class so that a lookup copies one reference
  /// out of the shard lock, not the meta's fields; immutable, so updateMeta swaps in a
  /// new entry. A committed entry carries its complete body, so a hit on it needs no
  /// lock on the object at all. Its memo lives and dies with this version of the meta.
  final class Entry: EntryMemo {
    let object: MemoryObject
    let meta: CacheMeta
    let weight: Int
    let completeBody: MemoryBody?
    private let memoSlot = EntryMemoSlot()

    init(object: MemoryObject, meta: CacheMeta, weight: Int, completeBody: MemoryBody? = nil) {
      self.object = object
      self.meta = meta
      self.weight = weight
      self.completeBody = completeBody
    }

    func with(meta: CacheMeta, weight: Int) -> Entry {
      Entry(object: object, meta: meta, weight: weight, completeBody: completeBody)
    }

    func memo<T: AnyObject & Sendable>(as type: T.Type) -> T? { memoSlot.value(as: type) }

    func keepMemo<T: AnyObject & Sendable>(_ value: T) -> T? { memoSlot.keep(value) }
  }

  struct ShardState: Sendable {
    var committed: [CacheHash: Entry] = [:]
    /// Writes in progress, visible to partial readers; usually one per key.
    var writing: [CacheHash: [Entry]] = [:]
  }

  final class Shard: Sendable {
    let state = Mutex(ShardState())
  }

  /// - Parameters:
  ///   - evictionManager: decides victims when the budget is full; by default one of
  ///     the configured `evictionPolicy`, sized to the budget.
  ///   - observer: told about every object the store removes on its own or by purge.
  public init(
    configuration: MemoryStoreConfiguration = MemoryStoreConfiguration(),
    evictionManager: (any EvictionManager)? = nil,
    observer: (any StorageObserver)? = nil,
    logger: Logger = Logger(label: "edge-cdn-store.memory")
  ) throws(ConfigurationError) {
    try configuration.validate()
    self.configuration = configuration
    self.evictionManager =
      evictionManager ?? configuration.evictionPolicy.makeManager(capacity: configuration.byteBudget)
    self.observer = observer
    self.logger = logger
    self.shards = (0..<configuration.shardCount).map { _ in Shard() }
  }

  /// Bytes charged now: committed objects and writes in flight.
  public var usedBytes: Int { charged.load(ordering: .relaxed) }
  /// Committed objects now.
  public var objectCount: Int { objects.load(ordering: .relaxed) }

  public var supportsStreamingPartialWrite: Bool { true }

  @inline(__always)
  func shard(for hash: CacheHash) -> Shard {
    shards[Int(hash.shardingBits % UInt64(shards.count))]
  }

  // MARK: Storage

  public func lookup(_ key: CacheKey) async throws(CacheError) -> CacheHit<MemoryHitHandler>? {
    guard let entry = find(key) else { return nil }
    return CacheHit(meta: entry.meta, handler: handler(for: entry))
  }

  /// The same lookup as `lookup`, without building a `CacheHit` (see `Storage.lookupParts`).
  public func lookupParts(_ key: CacheKey) async throws(CacheError) -> (meta: CacheMeta, handler: MemoryHitHandler)? {
    guard let entry = find(key) else { return nil }
    return (entry.meta, handler(for: entry))
  }

  /// The entry a lookup of `key` serves (a write in progress first), its access counted.
  /// Inlined so that each lookup stays one function, as it was before it had two forms.
  @inline(__always)
  private func find(_ key: CacheKey) -> Entry? {
    let hash = key.combinedHash
    let found = shard(for: hash).state.withLock { state -> (Entry, partial: Bool)? in
      if let partial = state.writing[hash]?.first { return (partial, true) }
      return state.committed[hash].map { ($0, false) }
    }
    guard let (entry, partial) = found else { return nil }
    if !partial { evictionManager.access(key.compact, size: entry.weight, freshUntil: entry.meta.freshUntil) }
    return entry
  }

  public func lookupStreamingWrite(
    _ key: CacheKey, tag: StreamingWriteTag?
  ) async throws(CacheError) -> CacheHit<MemoryHitHandler>? {
    guard let tag else { return try await lookup(key) }
    let hash = key.combinedHash
    let entry = shard(for: hash).state.withLock { state -> Entry? in
      if let partial = state.writing[hash]?.first(where: { $0.object.tag == tag }) { return partial }
      if let committed = state.committed[hash], committed.object.tag == tag { return committed }
      return nil
    }
    return entry.map(hit)
  }

  private func hit(_ entry: Entry) -> CacheHit<MemoryHitHandler> {
    CacheHit(meta: entry.meta, handler: handler(for: entry))
  }

  private func handler(for entry: Entry) -> MemoryHitHandler {
    MemoryHitHandler(
      object: entry.object, snapshot: entry.completeBody ?? entry.object.completeBody, weight: entry.weight)
  }

  public func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> MemoryMissHandler {
    let hash = key.combinedHash
    let metaWeight = meta.encodedSizeEstimate
    try charge(metaWeight, for: hash)
    let tag = StreamingWriteTag(rawValue: nextTag.add(1, ordering: .relaxed).newValue)
    let object = MemoryObject(hash: hash, tag: tag)
    let entry = Entry(object: object, meta: meta, weight: metaWeight)
    shard(for: hash).state.withLock { $0.writing[hash, default: []].append(entry) }
    return MemoryMissHandler(store: self, key: key, meta: meta, object: object, chargedForMeta: metaWeight)
  }

  public func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool {
    let hash = key.combinedHash
    let (committed, hiddenWrites) = shard(for: hash).state.withLock { state in
      (state.committed.removeValue(forKey: hash), state.writing.removeValue(forKey: hash)?.count ?? 0)
    }
    if let committed {
      objects.subtract(1, ordering: .relaxed)
      committedWeight.subtract(committed.weight, ordering: .relaxed)
      release(committed.weight)
      evictionManager.remove(key)
      observer?.storage(
        Self.tierName,
        removed: StorageRemoval(
          key: key, weight: committed.weight, reason: reason == .eviction ? .evictionPurge : .invalidation))
    }
    return committed != nil || hiddenWrites > 0
  }

  public func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    let hash = key.combinedHash
    let newMetaWeight = meta.encodedSizeEstimate
    // Charge a growth before taking the lock, so a full budget evicts others first.
    let current = shard(for: hash).state.withLock { $0.committed[hash]?.meta.encodedSizeEstimate }
    guard let current else { return false }
    let growth = max(0, newMetaWeight - current)
    if growth > 0 { try charge(growth, for: hash) }
    let outcome = shard(for: hash).state.withLock { state -> (delta: Int, weight: Int)? in
      guard let entry = state.committed[hash] else { return nil }
      let delta = newMetaWeight - entry.meta.encodedSizeEstimate
      let updated = entry.with(meta: meta, weight: entry.weight + delta)
      state.committed[hash] = updated
      return (delta, updated.weight)
    }
    guard let outcome else {
      release(growth)
      return false
    }
    // We charged `growth`; the real change is `delta`: give back the difference.
    release(growth - outcome.delta)
    committedWeight.add(outcome.delta, ordering: .relaxed)
    removeVictims(evictionManager.admit(key.compact, size: outcome.weight, freshUntil: meta.freshUntil))
    return true
  }

  // MARK: Budget and lifecycle, used by the miss handler

  /// Charges `bytes` to the budget, evicting committed objects when it does not fit.
  /// Throws `insufficientSpace` when nothing more can be evicted (the rest is held by
  /// writes in flight).
  func charge(_ bytes: Int, for hash: CacheHash) throws(CacheError) {
    let budget = configuration.byteBudget
    var current = charged.load(ordering: .relaxed)
    while true {
      if current + bytes <= budget {
        let (exchanged, original) = charged.compareExchange(
          expected: current, desired: current + bytes, ordering: .relaxed)
        if exchanged { return }
        current = original
        continue
      }
      let victims = evictionManager.evict(atLeast: current + bytes - budget)
      let freed = removeVictims(victims)
      let now = charged.load(ordering: .relaxed)
      if victims.isEmpty || (freed == 0 && now >= current) {
        throw .insufficientSpace(key: hash, needed: bytes, budget: budget)
      }
      current = now
    }
  }

  func release(_ bytes: Int) {
    if bytes != 0 { charged.subtract(bytes, ordering: .relaxed) }
  }

  /// Makes a finished write the committed object of its key (the last to finish wins).
  func commit(key: CacheKey, meta: CacheMeta, object: MemoryObject, weight: Int) {
    let hash = key.combinedHash
    let entry = Entry(object: object, meta: meta, weight: weight, completeBody: object.completeBody)
    let replaced = shard(for: hash).state.withLock { state -> Entry? in
      Self.removeWrite(object, of: hash, from: &state)
      return state.committed.updateValue(entry, forKey: hash)
    }
    committedWeight.add(weight, ordering: .relaxed)
    if let replaced {
      committedWeight.subtract(replaced.weight, ordering: .relaxed)
      release(replaced.weight)
      observer?.storage(
        Self.tierName, removed: StorageRemoval(key: key.compact, weight: replaced.weight, reason: .replaced))
    } else {
      objects.add(1, ordering: .relaxed)
    }
    removeVictims(evictionManager.admit(key.compact, size: weight, freshUntil: meta.freshUntil))
  }

  /// Forgets a write that will not finish, gives its bytes back and fails its readers.
  func abandonWrite(of key: CacheKey, object: MemoryObject, charged bytes: Int, reason: String) {
    let hash = key.combinedHash
    shard(for: hash).state.withLock { Self.removeWrite(object, of: hash, from: &$0) }
    release(bytes)
    object.fail(.writerFailed(key: hash, reason: reason))
    logger.debug(
      "write abandoned", metadata: ["tier": "\(Self.tierName)", "key": "\(hash.hex)", "reason": "\(reason)"])
  }

  /// Chunks that pin a much larger allocation (a slice of a socket read buffer, say)
  /// are copied, so the budget counts what is really held.
  func retainable(_ chunk: ByteBuffer) -> ByteBuffer {
    guard chunk.storageCapacity > 2 * chunk.readableBytes + 1024 else { return chunk }
    var copy = allocator.buffer(capacity: chunk.readableBytes)
    copy.writeImmutableBuffer(chunk)
    return copy
  }

  private static func removeWrite(_ object: MemoryObject, of hash: CacheHash, from state: inout ShardState) {
    guard var writes = state.writing[hash] else { return }
    writes.removeAll { $0.object === object }
    state.writing[hash] = writes.isEmpty ? nil : writes
  }

  /// Removes objects the eviction manager gave up; returns the bytes freed.
  @discardableResult
  private func removeVictims(_ victims: [CompactCacheKey]) -> Int {
    var freed = 0
    for victim in victims {
      let hash = victim.combinedHash
      guard let entry = shard(for: hash).state.withLock({ $0.committed.removeValue(forKey: hash) }) else { continue }
      objects.subtract(1, ordering: .relaxed)
      committedWeight.subtract(entry.weight, ordering: .relaxed)
      release(entry.weight)
      freed += entry.weight
      logger.debug(
        "evicted for capacity",
        metadata: ["tier": "\(Self.tierName)", "key": "\(hash.hex)", "weight": "\(entry.weight)"])
      observer?.storage(Self.tierName, removed: StorageRemoval(key: victim, weight: entry.weight, reason: .capacity))
    }
    return freed
  }
}

extension MemoryStore: StatisticsReporting, HealthReporting {
  public var storageStatistics: StorageStatistics { StorageStatistics(objectCount: objectCount, usedBytes: usedBytes) }

  /// RAM cannot fail as a disk does; the tier degrades when writes in flight hold
  /// most of the budget, because new writes then fail with `insufficientSpace`.
  public func health() async -> [TierHealth] {
    let used = usedBytes
    let budget = configuration.byteBudget
    let inFlight = max(0, used - committedWeight.load(ordering: .relaxed))
    if inFlight * 10 > budget * 9 {
      return [
        TierHealth(
          tier: Self.tierName, status: .degraded,
          reasons: ["writes in flight hold \(inFlight) of \(budget) budget bytes; new writes may be refused"])
      ]
    }
    return [TierHealth(tier: Self.tierName, status: .ok)]
  }
}
