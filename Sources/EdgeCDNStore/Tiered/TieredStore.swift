public import CoreMetrics
public import Logging

/// RAM over disk over a shared tier, as one Storage.
///
/// Lookups go RAM, then disk (copying hot objects into RAM as they are read, by
/// `PromotionRule`), then the shared tier (copying into RAM and disk as the reader
/// reads). Writes go into RAM and disk at once through a tee and, once committed,
/// are uploaded to the shared tier in the background. Purges and meta updates reach
/// every tier; the shared tier's failures are retried in the background.
///
/// Why generic and `@inlinable`: a RAM hit must cost one branch over the RAM tier
/// alone, so the RAM path is specialised into the caller, as `InstrumentedStorage`
/// is; the colder disk and shared paths live in `TieredCore`.
///
/// The shared tier never fails or stalls a client: each call has a time limit, a
/// circuit breaker skips a failing tier, uploads go through a bounded queue that drops
/// when full, and its errors on lookups count as misses.
public struct TieredStore<Memory: Storage, Disk: Storage>: Storage {
  public typealias Hit = TieredHitHandler<Memory, Disk>
  public typealias Miss = TeeMissHandler<Memory, Disk>

  @usableFromInline let memory: Memory
  @usableFromInline let core: TieredCore<Memory, Disk>

  /// - Parameters:
  ///   - memory: the RAM tier, asked first.
  ///   - disk: the disk tier, or nil for RAM alone (over the shared tier, if any).
  ///   - shared: the shared tier, or nil.
  public init(
    memory: Memory, disk: Disk?, shared: (any SharedTier)? = nil,
    configuration: TieredStoreConfiguration = TieredStoreConfiguration(),
    metricsFactory: any MetricsFactory = MetricsSystem.factory,
    logger: Logger = Logger(label: "edge-cdn-store.tiered")
  ) {
    self.init(
      memory: memory, disk: disk, shared: shared, configuration: configuration, metricsFactory: metricsFactory,
      logger: logger, deadlines: .shared)
  }

  /// `deadlines`: where the shared tier's time limits wait (tests give a watch of their own).
  init(
    memory: Memory, disk: Disk?, shared: (any SharedTier)?, configuration: TieredStoreConfiguration,
    metricsFactory: any MetricsFactory, logger: Logger, deadlines: DeadlineWatch
  ) {
    self.memory = memory
    self.core = TieredCore(
      memory: memory, disk: disk, shared: shared, configuration: configuration,
      metrics: TieredMetrics(factory: metricsFactory), logger: logger, deadlines: deadlines)
  }

  public var memoryTier: Memory { memory }
  public var disk: Disk? { core.disk }
  /// The guarded client of the shared tier (breaker state, configuration).
  public var shared: SharedTierClient? { core.shared }
  public var configuration: TieredStoreConfiguration { core.configuration }
  /// Uploads to the shared tier accepted by the write-behind queue so far.
  public var uploadsQueued: Int { core.uploads?.enqueuedCount ?? 0 }
  /// Uploads dropped because the write-behind queue was full.
  public var uploadsDropped: Int { core.uploads?.droppedCount ?? 0 }

  public var supportsStreamingPartialWrite: Bool { memory.supportsStreamingPartialWrite }

  /// RAM's maximum object size when a disk tier takes larger writes: past it readers follow
  /// disk's write a fragment at a time (see DiskHandoff).
  public var streamingPartialWriteLimit: Int? { core.disk == nil ? nil : core.memoryLimit }

  /// The RAM tier is asked for its meta and handler as two values (`lookupParts`), so
  /// the handler moves into the tiered one: taking it out of a `CacheHit` would copy it.
  ///
  /// RAM may answer with a write still in progress; when disk takes that write too, the
  /// reader follows it onto disk if it outgrows RAM (`FollowedWrite`), as a tagged
  /// reader does. Before, a request that found the write this way (after the fill's lock
  /// was released) was cut where RAM stopped.
  @inlinable
  public func lookup(_ key: CacheKey) async throws(CacheError) -> CacheHit<Hit>? {
    guard let (meta, handler) = try await memory.lookupParts(key) else { return try await core.lookupBelow(key) }
    if let tag = handler.streamingWriteTag,
      let followed = try await followedWrite(key, tag: tag, memoryHit: CacheHit(meta: meta, handler: handler))
    {
      return followed
    }
    return CacheHit(meta: consume meta, handler: Hit(memory: consume handler))
  }

  /// A reader of RAM's write in progress that follows it onto disk; nil when disk does not
  /// take that write (RAM's reader then reads on alone).
  @usableFromInline
  func followedWrite(
    _ key: CacheKey, tag: StreamingWriteTag, memoryHit: CacheHit<Memory.Hit>
  ) async throws(CacheError) -> CacheHit<Hit>? {
    guard let handoff = core.handoffs.handoff(for: tag) else { return nil }
    return try await core.followedWrite(key, handoff: handoff, memoryHit: memoryHit)
  }

  /// With a tag, the write of that tag: RAM's copy while it is written there, and disk's
  /// once it left RAM for its size or a RAM failure (tags name the RAM tier's writes; a
  /// write's tag is its RAM write's). Not the hot path: the RAM hit's parts are copied.
  public func lookupStreamingWrite(_ key: CacheKey, tag: StreamingWriteTag?) async throws(CacheError) -> CacheHit<Hit>?
  {
    guard let tag else { return try await lookup(key) }
    // The handoff first: found before RAM, it still tells how disk's write ended if RAM's
    // write fails and disk commits between the two lookups (it leaves the registry then).
    let handoff = core.handoffs.handoff(for: tag)
    let memoryHit = try await memory.lookupStreamingWrite(key, tag: tag)
    return try await core.followedWrite(key, handoff: handoff, memoryHit: memoryHit)
  }

  public func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Miss {
    try await core.missHandler(for: key, meta: meta)
  }

  public func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool {
    try await core.purge(key, reason: reason)
  }

  public func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    try await core.updateMeta(key, meta: meta)
  }

  /// Stops the background uploads and retries after the queued ones ran.
  public func shutdown() async {
    await core.uploads?.shutdown()
    await core.retries?.shutdown()
  }
}

extension TieredStore: HealthReporting {
  /// RAM, disk and shared tier, top first; the shared tier is degraded while its
  /// circuit is not closed (the local tiers then serve alone).
  public func health() async -> [TierHealth] {
    var all: [TierHealth] = []
    if let reporting = memory as? any HealthReporting {
      all += await reporting.health()
    } else {
      all.append(TierHealth(tier: "memory", status: .ok))
    }
    if let disk = core.disk {
      if let reporting = disk as? any HealthReporting {
        all += await reporting.health()
      } else if let store = disk as? DiskStore, !store.isHealthy {
        all.append(TierHealth(tier: "disk", status: .failed, reasons: ["disk store reported an I/O failure"]))
      } else {
        all.append(TierHealth(tier: "disk", status: .ok))
      }
    }
    if let shared = core.shared { all.append(await shared.health()) }
    return all
  }
}
