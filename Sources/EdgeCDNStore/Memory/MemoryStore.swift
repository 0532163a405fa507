public import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The RAM tier: objects in a sharded index, within a hard byte budget.
///
/// - Concurrency: the index is split into shards, each behind a `Mutex`; a hit takes
///   one shard lock to find the object and none to read a complete body. The budget
///   is one atomic, charged per chunk with compare-and-swap. No actor, no global lock.
/// - Budget: every chunk is charged before it is kept, so the budget is never
///   exceeded, in-flight writes included. When a charge does not fit, the embedded
///   eviction manager names victims, they are removed and reported to the observer.
/// - What is charged is what an object holds on the heap (`HeapFootprint`): its body's
///   storage, its decoded meta's arrays and strings, its entry, index slot and eviction
///   key, and the memo a reader keeps in it; not only body and meta bytes, which for a
///   1 KiB object missed a third of its real cost. A committed body of up to `joinLimit`
///   bytes is one buffer of exactly its size.
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
  /// The index's shards, each a lock and its part of the index, in place (`PaddedTable`).
  let shards: PaddedTable<Mutex<ShardState>>
  private let charged = Atomic<Int>(0)
  private let objects = Atomic<Int>(0)
  /// Weight of committed objects; `charged` minus this is held by writes in flight.
  private let committedWeight = Atomic<Int>(0)
  private let logger: Logger
  private let nextTag = Atomic<UInt64>(0)
  /// Large bodies that could not be put in a RAM file (see `fileBodyFallbacks`).
  private let fileFallbacks = Atomic<Int>(0)
  /// Tests set it to make every RAM file creation fail, as EMFILE or ENOMEM would.
  let failsFileBodies = Atomic<Bool>(false)
  /// Heap bytes of a committed entry beside its meta's and body's own allocations:
  /// the entry object, its slot in the shard's dictionary and its key in the eviction
  /// manager.
  let entryOverhead: Int
  /// Shares the storage of equal field strings among the stored metas.
  private let interner = FieldInterner()
  /// Bodies up to this size are joined into one exactly sized buffer at commit.
  static let joinLimit = 64 << 10
  /// A slot of the shard dictionary (16-byte key, 8-byte value) at a load of one half:
  /// Swift's dictionaries run between 3/8 and 3/4 full.
  static let indexSlotBytes = 48

  /// One stored or in-progress object. A class so that a lookup copies one reference
  /// out of the shard lock, not the meta's fields; immutable, so updateMeta swaps in a
  /// new entry. A committed entry carries its complete body and no write state, so a
  /// hit on it needs no lock on the object at all. Its memo lives and dies with this
  /// version of the meta, and is charged to the budget while the entry is indexed.
  final class Entry: EntryMemo {
    /// The write this entry shows while in progress; nil once committed.
    let object: MemoryObject?
    let tag: StreamingWriteTag
    let meta: CacheMeta
    let weight: Int
    let completeBody: MemoryBody?
    /// Where a memo is charged; nil for a write in progress (no reader gets its memo).
    private weak let store: MemoryStore?
    private let memoSlot = EntryMemoSlot()
    /// Budget bytes charged for the memo; `retired` once the entry left the index.
    private let memoCharge = Atomic<Int>(0)
    private static let retired = -1

    /// Stored bytes of an instance, for `HeapFootprint.object` (all 8-byte aligned).
    static let storedBytes =
      MemoryLayout<MemoryObject?>.stride + MemoryLayout<StreamingWriteTag>.stride + MemoryLayout<CacheMeta>.stride
      + MemoryLayout<Int>.stride + MemoryLayout<MemoryBody?>.stride + MemoryLayout<MemoryStore?>.stride
      + MemoryLayout<EntryMemoSlot>.stride + MemoryLayout<Atomic<Int>>.stride

    /// A write in progress.
    init(writing object: MemoryObject, meta: CacheMeta, weight: Int) {
      self.object = object
      self.tag = object.tag
      self.meta = meta
      self.weight = weight
      self.completeBody = nil
      self.store = nil
    }

    /// A committed version.
    init(tag: StreamingWriteTag, meta: CacheMeta, weight: Int, body: MemoryBody, store: MemoryStore) {
      self.object = nil
      self.tag = tag
      self.meta = meta
      self.weight = weight
      self.completeBody = body
      self.store = store
    }

    /// The same object with another meta: a new version, without a memo.
    func with(meta: CacheMeta, weight: Int) -> Entry? {
      guard let store, let completeBody else { return nil }
      return Entry(tag: tag, meta: meta, weight: weight, body: completeBody, store: store)
    }

    /// Budget bytes charged for the memo now.
    var memoWeight: Int { max(0, memoCharge.load(ordering: .relaxed)) }

    func memo<T: AnyObject & Sendable>(as type: T.Type) -> T? { memoSlot.value(as: type) }

    /// Lends the complete body to `serve`, in place (`MemoryBody.withContents`): binding
    /// it to a local first may copy it, a retain of each of its lists.
    @inline(__always)
    func serveBody(_ serve: ([ByteBuffer], FileBody?) -> Void) { completeBody?.withContents(serve) }

    /// Lends the memo's value without a retain (`EntryMemoSlot.withValue`).
    @inline(__always)
    func withMemoValue<R>(_ body: (Unmanaged<AnyObject>?) -> R) -> R { memoSlot.withValue(body) }

    /// Charges the memo before keeping it; without room in the budget, the value is
    /// returned unkept (the caller uses it once, the next hit builds it again).
    func keepMemo<T: AnyObject & Sendable>(_ value: T) -> T? {
      // A write in progress, or a version that has left the index: nothing to charge
      // (nor to evict others for).
      guard let store, memoCharge.load(ordering: .relaxed) != Self.retired else { return memoSlot.keep(value) }
      if memoSlot.isSet { return memoSlot.value(as: T.self) }
      let bytes = (value as? any MemoFootprint)?.heapFootprint ?? HeapFootprint.object(storedBytes: 8)
      guard store.chargeMemo(bytes) else { return value }
      let kept = memoSlot.keep(value)
      guard kept === value else {
        // Another reader's memo is kept, charged by that reader.
        store.release(bytes)
        return kept
      }
      let (charged, _) = memoCharge.compareExchange(expected: 0, desired: bytes, ordering: .acquiringAndReleasing)
      if charged {
        store.committedMemo(bytes)
      } else {
        // Retired meanwhile: the entry left the index and nothing else will give these back.
        store.release(bytes)
      }
      return kept
    }

    /// Marks the entry as out of the index: no memo is charged from now on. Returns the
    /// memo bytes charged so far, which the caller gives back with the entry's weight.
    func retire() -> Int { max(0, memoCharge.exchange(Self.retired, ordering: .acquiringAndReleasing)) }
  }

  struct ShardState: Sendable {
    var committed: [CacheHash: Entry] = [:]
    /// Writes in progress, visible to partial readers; usually one per key.
    var writing: [CacheHash: [Entry]] = [:]
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
    self.shards = PaddedTable(count: configuration.shardCount) { _ in Mutex(ShardState()) }
    self.entryOverhead =
      HeapFootprint.object(storedBytes: Entry.storedBytes) + Self.indexSlotBytes
      + self.evictionManager.trackingBytesPerKey
  }

  /// Bytes charged now: committed objects and writes in flight.
  public var usedBytes: Int { charged.load(ordering: .relaxed) }
  /// Committed objects now.
  public var objectCount: Int { objects.load(ordering: .relaxed) }
  /// Bodies of at least `fileBodyThreshold` kept in buffers because their RAM file could
  /// not be made (descriptors or memory exhausted): served correctly, without sendfile.
  public var fileBodyFallbacks: Int { fileFallbacks.load(ordering: .relaxed) }

  public var supportsStreamingPartialWrite: Bool { true }

  @inline(__always)
  func shard(for hash: CacheHash) -> UnsafeMutablePointer<Mutex<ShardState>> {
    shards.pointer(shardIndex(for: hash))
  }

  @inline(__always)
  func shardIndex(for hash: CacheHash) -> Int { Int(hash.shardingBits % UInt64(shards.count)) }

  // MARK: Storage

  public func lookup(_ key: CacheKey) async throws(CacheError) -> CacheHit<MemoryHitHandler>? {
    guard let entry = find(key) else { return nil }
    return CacheHit(meta: entry.meta, handler: handler(for: entry, hash: key.combinedHash))
  }

  /// The same lookup as `lookup`, without building a `CacheHit` (see `Storage.lookupParts`).
  public func lookupParts(_ key: CacheKey) async throws(CacheError) -> (meta: CacheMeta, handler: MemoryHitHandler)? {
    guard let entry = find(key) else { return nil }
    return (entry.meta, handler(for: entry, hash: key.combinedHash))
  }

  /// The entry a lookup of `key` serves (a write in progress first), its access counted.
  /// Inlined so that each lookup stays one function, as it was before it had two forms.
  @inline(__always)
  private func find(_ key: CacheKey) -> Entry? {
    let hash = key.combinedHash
    let found = shard(for: hash).pointee.withLock { state -> (Entry, partial: Bool)? in
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
    let entry = shard(for: hash).pointee.withLock { state -> Entry? in
      if let partial = state.writing[hash]?.first(where: { $0.tag == tag }) { return partial }
      if let committed = state.committed[hash], committed.tag == tag { return committed }
      return nil
    }
    return entry.map { CacheHit(meta: $0.meta, handler: handler(for: $0, hash: hash)) }
  }

  private func handler(for entry: Entry, hash: CacheHash) -> MemoryHitHandler {
    MemoryHitHandler(
      hash: hash, object: entry.object, snapshot: entry.completeBody ?? entry.object?.completeBody,
      weight: entry.weight)
  }

  public func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> MemoryMissHandler {
    let hash = key.combinedHash
    let meta = interner.intern(meta)
    // The entry and the meta now; the body chunk by chunk; the exact figure at commit.
    let upFront = entryOverhead + meta.heapFootprint
    try charge(upFront, for: hash)
    let tag = StreamingWriteTag(rawValue: nextTag.add(1, ordering: .relaxed).newValue)
    let object = MemoryObject(hash: hash, tag: tag)
    let entry = Entry(writing: object, meta: meta, weight: upFront)
    shard(for: hash).pointee.withLock { $0.writing[hash, default: []].append(entry) }
    return MemoryMissHandler(store: self, key: key, meta: meta, object: object, chargedUpFront: upFront)
  }

  public func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool {
    let hash = key.combinedHash
    let (committed, hiddenWrites) = shard(for: hash).pointee.withLock { state in
      (state.committed.removeValue(forKey: hash), state.writing.removeValue(forKey: hash)?.count ?? 0)
    }
    if let committed {
      objects.subtract(1, ordering: .relaxed)
      releaseCommitted(committed)
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
    let meta = interner.intern(meta)
    let newMetaWeight = meta.heapFootprint
    // Charge a growth before taking the lock, so a full budget evicts others first.
    let current = shard(for: hash).pointee.withLock { $0.committed[hash]?.meta.heapFootprint }
    guard let current else { return false }
    let growth = max(0, newMetaWeight - current)
    if growth > 0 { try charge(growth, for: hash) }
    let outcome = shard(for: hash).pointee.withLock { state -> (delta: Int, weight: Int, replaced: Entry)? in
      guard let entry = state.committed[hash] else { return nil }
      let delta = newMetaWeight - entry.meta.heapFootprint
      guard let updated = entry.with(meta: meta, weight: entry.weight + delta) else { return nil }
      state.committed[hash] = updated
      return (delta, updated.weight, entry)
    }
    guard let outcome else {
      release(growth)
      return false
    }
    // We charged `growth`; the real change is `delta`: give back the difference, and the
    // memo of the version replaced.
    let memo = outcome.replaced.retire()
    release(growth - outcome.delta + memo)
    committedWeight.add(outcome.delta - memo, ordering: .relaxed)
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

  /// Makes a finished write the committed object of its key (the last to finish wins),
  /// its body compacted and its charge made exact; returns the object's weight. Throws
  /// (the write abandoned) when the exact charge is larger and cannot be made.
  func commit(key: CacheKey, meta: CacheMeta, object: MemoryObject, charged: Int) throws(CacheError) -> Int {
    let hash = key.combinedHash
    let body = keptBody(of: object, hash: hash)
    let weight = entryOverhead + meta.heapFootprint + body.heapFootprint
    if weight > charged {
      do throws(CacheError) {
        try charge(weight - charged, for: hash)
      } catch {
        abandonWrite(of: key, object: object, charged: charged, reason: error.description)
        throw error
      }
    } else {
      release(charged - weight)
    }
    let entry = Entry(tag: object.tag, meta: meta, weight: weight, body: body, store: self)
    let replaced = shard(for: hash).pointee.withLock { state -> Entry? in
      Self.removeWrite(object, of: hash, from: &state)
      return state.committed.updateValue(entry, forKey: hash)
    }
    committedWeight.add(weight, ordering: .relaxed)
    if let replaced {
      releaseCommitted(replaced)
      observer?.storage(
        Self.tierName, removed: StorageRemoval(key: key.compact, weight: replaced.weight, reason: .replaced))
    } else {
      objects.add(1, ordering: .relaxed)
    }
    removeVictims(evictionManager.admit(key.compact, size: weight, freshUntil: meta.freshUntil))
    return weight
  }

  /// The body as it is kept once committed: in a RAM file when large enough (and the file
  /// can be made), else compacted buffers. Written here, on the committing thread: a
  /// memfd write is a memory copy, never a wait for a device.
  private func keptBody(of object: MemoryObject, hash: CacheHash) -> MemoryBody {
    let complete = object.completeBody ?? MemoryBody()
    let threshold = configuration.fileBodyThreshold
    if threshold > 0, complete.size >= threshold, complete.file == nil {
      do throws(MemoryFile.Failure) {
        if failsFileBodies.load(ordering: .relaxed) { throw MemoryFile.Failure(operation: "test", errno: EMFILE) }
        let body = MemoryBody(file: try MemoryFile.make(holding: complete.chunks), size: complete.size)
        object.replaceCompleteBody(with: body)
        return body
      } catch {
        let count = fileFallbacks.add(1, ordering: .relaxed).newValue
        logger.log(
          level: count == 1 ? .warning : .debug, "large body kept in buffers: RAM file not made",
          metadata: [
            "tier": "\(Self.tierName)", "key": "\(hash.hex)", "operation": "\(error.operation)",
            "errno": "\(error.errno)", "fallbacks": "\(count)",
          ])
      }
    }
    return complete.compacted(joinLimit: Self.joinLimit, retainable: retainable)
  }

  /// Gives back what an entry that left the index was charged, its weight and its memo;
  /// returns the bytes.
  @discardableResult
  private func releaseCommitted(_ entry: Entry) -> Int {
    let total = entry.weight + entry.retire()
    committedWeight.subtract(total, ordering: .relaxed)
    release(total)
    return total
  }

  /// Charges a memo kept in an entry; false when even eviction cannot make room.
  /// Charges a memo only if the budget has room now. Why not evict for it: it is kept
  /// from a hit, and evicting could remove the very entry being hit (the next victim),
  /// before the hit tells the eviction manager about it, which would then track a key
  /// the store no longer holds. A memo not kept is built again by the next hit.
  func chargeMemo(_ bytes: Int) -> Bool {
    let budget = configuration.byteBudget
    var current = charged.load(ordering: .relaxed)
    while current + bytes <= budget {
      let (exchanged, original) = charged.compareExchange(
        expected: current, desired: current + bytes, ordering: .relaxed)
      if exchanged { return true }
      current = original
    }
    return false
  }

  func committedMemo(_ bytes: Int) { committedWeight.add(bytes, ordering: .relaxed) }

  /// Forgets a write that will not finish, gives its bytes back and fails its readers.
  func abandonWrite(of key: CacheKey, object: MemoryObject, charged bytes: Int, reason: String) {
    let hash = key.combinedHash
    shard(for: hash).pointee.withLock { Self.removeWrite(object, of: hash, from: &$0) }
    release(bytes)
    object.fail(.writerFailed(key: hash, reason: reason))
    logger.debug(
      "write abandoned", metadata: ["tier": "\(Self.tierName)", "key": "\(hash.hex)", "reason": "\(reason)"])
  }

  /// Chunks that pin a larger allocation (a slice of a socket read buffer, a buffer
  /// NIO rounded up to a power of two) by more than an eighth are copied into storage of
  /// their size, so what is held is what is charged.
  func retainable(_ chunk: ByteBuffer) -> ByteBuffer {
    guard chunk.storageCapacity > chunk.readableBytes + chunk.readableBytes / 8 + 64 else { return chunk }
    return ExactBuffer.copy(chunk)
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
      guard let entry = shard(for: hash).pointee.withLock({ $0.committed.removeValue(forKey: hash) }) else { continue }
      objects.subtract(1, ordering: .relaxed)
      freed += releaseCommitted(entry)
      logger.debug(
        "evicted for capacity",
        metadata: ["tier": "\(Self.tierName)", "key": "\(hash.hex)", "weight": "\(entry.weight)"])
      observer?.storage(Self.tierName, removed: StorageRemoval(key: victim, weight: entry.weight, reason: .capacity))
    }
    return freed
  }
}

extension MemoryStore {
  /// What one committed object is charged for, by part (see `HeapFootprint`).
  public struct ObjectFootprint: Sendable, Equatable {
    /// The entry object, its index slot and its eviction key.
    public var entry: Int
    /// The decoded meta's arrays and strings.
    public var meta: Int
    /// The body's storage and chunk list.
    public var body: Int
    /// The memo a reader keeps in the entry (a serialised response head), once kept.
    public var memo: Int

    public var total: Int { entry + meta + body + memo }

    public init(entry: Int, meta: Int, body: Int, memo: Int) {
      self.entry = entry
      self.meta = meta
      self.body = body
      self.memo = memo
    }
  }

  /// The charge of `key`'s committed object, by part; nil when none is committed.
  public func footprint(of key: CacheKey) -> ObjectFootprint? {
    let hash = key.combinedHash
    guard let entry = shard(for: hash).pointee.withLock({ $0.committed[hash] }) else { return nil }
    return ObjectFootprint(
      entry: entryOverhead, meta: entry.meta.heapFootprint, body: entry.completeBody?.heapFootprint ?? 0,
      memo: entry.memoWeight)
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
