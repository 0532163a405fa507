public import Tracing

/// Any `Storage`, observed: metrics, spans and error counts around every operation,
/// without the tier knowing. Each tier is wrapped once with its own `tier` label.
///
/// Why a wrapper rather than calls inside each tier: every tier (RAM, disk, tiered,
/// shared) is measured the same way by one piece of code, and a tier stays testable
/// alone. Tier-internal events (evictions, reclaim, corruption) reach the metrics
/// through `MetricsStorageObserver`, which the tier is given as its observer.
///
/// Why `@inlinable`: a generic wrapper called from another module runs unspecialised
/// (runtime metadata lookups, boxed async frames), which measured as doubling the cost
/// of a RAM hit. Inlinable, the caller specialises it for its concrete tier; the
/// non-generic bookkeeping stays behind `@usableFromInline` calls into this module.
public struct InstrumentedStorage<Base: Storage>: Storage {
  public typealias Hit = InstrumentedHitHandler<Base.Hit>
  public typealias Miss = InstrumentedMissHandler<Base.Miss>

  public let base: Base
  public let metrics: StoreMetrics
  @usableFromInline let probe: OperationProbe

  public init(_ base: Base, metrics: StoreMetrics, tracer: any Tracer = InstrumentationSystem.tracer) {
    self.base = base
    self.metrics = metrics
    self.probe = OperationProbe(metrics: metrics, tracer: tracer, statistics: base as? any StatisticsReporting)
  }

  public var supportsStreamingPartialWrite: Bool { base.supportsStreamingPartialWrite }

  public var streamingPartialWriteLimit: Int? { base.streamingPartialWriteLimit }

  @inlinable
  public func lookup(_ key: CacheKey) async throws(CacheError) -> CacheHit<Hit>? {
    let started = probe.lookupStarted()
    do {
      let found = try await base.lookup(key)
      return wrap(found, started: started, key: key)
    } catch {
      throw probe.lookupFailed(started, error)
    }
  }

  @inlinable
  public func lookupStreamingWrite(_ key: CacheKey, tag: StreamingWriteTag?) async throws(CacheError) -> CacheHit<Hit>?
  {
    let started = probe.lookupStarted()
    do {
      let found = try await base.lookupStreamingWrite(key, tag: tag)
      return wrap(found, started: started, key: key)
    } catch {
      throw probe.lookupFailed(started, error)
    }
  }

  /// The tiered store asks its RAM tier this way, so the wrapped handler moves through.
  @inlinable
  public func lookupParts(_ key: CacheKey) async throws(CacheError) -> (meta: CacheMeta, handler: Hit)? {
    let started = probe.lookupStarted()
    do {
      let found = try await base.lookupParts(key)
      let firstByteStart = probe.lookupEnded(started, key: key, hit: found != nil)
      guard let (meta, handler) = found else { return nil }
      return (meta, InstrumentedHitHandler(base: handler, probe: probe, start: firstByteStart))
    } catch {
      throw probe.lookupFailed(started, error)
    }
  }

  @inlinable
  func wrap(_ found: CacheHit<Base.Hit>?, started: OperationProbe.Started, key: CacheKey) -> CacheHit<Hit>? {
    let firstByteStart = probe.lookupEnded(started, key: key, hit: found != nil)
    guard let found else { return nil }
    return CacheHit(
      meta: found.meta, handler: InstrumentedHitHandler(base: found.handler, probe: probe, start: firstByteStart))
  }

  @inlinable
  public func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Miss {
    let started = probe.writeStarted(key: key)
    do {
      let handler = try await base.missHandler(for: key, meta: meta)
      probe.writeOpened(started)
      return InstrumentedMissHandler(base: handler, probe: probe)
    } catch {
      throw probe.failed(started, error)
    }
  }

  @inlinable
  public func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool {
    let started = probe.purgeStarted()
    do {
      let removed = try await base.purge(key, reason: reason)
      probe.purgeEnded(started, key: key, reason: reason, removed: removed)
      return removed
    } catch {
      throw probe.failed(started, error)
    }
  }

  @inlinable
  public func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    do {
      return try await base.updateMeta(key, meta: meta)
    } catch {
      throw probe.failed(nil, error)
    }
  }
}

extension InstrumentedStorage: HealthReporting where Base: HealthReporting {
  public func health() async -> [TierHealth] { await base.health() }
}

extension InstrumentedStorage: StatisticsReporting where Base: StatisticsReporting {
  public var storageStatistics: StorageStatistics { base.storageStatistics }
}
