import CoreMetrics
import NIOCore
public import Tracing

/// Any `Storage`, observed: metrics, spans and error counts around every operation,
/// without the tier knowing. Each tier is wrapped once with its own `tier` label.
///
/// Why a wrapper rather than calls inside each tier: every tier (RAM, disk, tiered,
/// shared) is measured the same way by one piece of code, and a tier stays testable
/// alone. Tier-internal events (evictions, reclaim, corruption) reach the metrics
/// through `MetricsStorageObserver`, which the tier is given as its observer.
///
/// Spans start under the caller's task-local `ServiceContext` (a request's span), with
/// the tracer read once at init: `InstrumentationSystem.tracer` takes a lock per read.
public struct InstrumentedStorage<Base: Storage>: Storage {
  public typealias Hit = InstrumentedHitHandler<Base.Hit>
  public typealias Miss = InstrumentedMissHandler<Base.Miss>

  public let base: Base
  public let metrics: StoreMetrics
  let tracer: any Tracer
  let statistics: (any StatisticsReporting)?
  let sampler: LatencySampler

  public init(
    _ base: Base, metrics: StoreMetrics, tracer: any Tracer = InstrumentationSystem.tracer
  ) {
    self.base = base
    self.metrics = metrics
    self.tracer = tracer
    self.statistics = base as? any StatisticsReporting
    self.sampler = LatencySampler(interval: metrics.latencySampleInterval)
  }

  public var supportsStreamingPartialWrite: Bool { base.supportsStreamingPartialWrite }

  public func lookup(_ key: CacheKey) async throws(CacheError) -> CacheHit<Hit>? {
    try await observeLookup(key) { () async throws(CacheError) in try await base.lookup(key) }
  }

  public func lookupStreamingWrite(_ key: CacheKey, tag: StreamingWriteTag?) async throws(CacheError) -> CacheHit<Hit>?
  {
    try await observeLookup(key) { () async throws(CacheError) in try await base.lookupStreamingWrite(key, tag: tag) }
  }

  private func observeLookup(
    _ key: CacheKey, _ operation: () async throws(CacheError) -> CacheHit<Base.Hit>?
  ) async throws(CacheError) -> CacheHit<Hit>? {
    let span = tracer.startSpan(
      "cache.lookup", context: ServiceContext.current ?? .topLevel, ofKind: .internal, at: DefaultTracerClock.now,
      function: #function, file: #fileID, line: #line)
    defer { span.end() }
    let sampled = sampler.shouldSample()
    let start = NIODeadline.now()
    do {
      let found = try await operation()
      if sampled {
        metrics.lookupDuration.recordNanoseconds(NIODeadline.now().uptimeNanoseconds - start.uptimeNanoseconds)
      }
      if span.isRecording {
        span.attributes["cache.tier"] = metrics.tier
        span.attributes["cache.key_hash"] = key.combinedHash.hex
        span.attributes["cache.outcome"] = found == nil ? "miss" : "hit"
      }
      guard let found else {
        metrics.lookupsMiss.increment()
        return nil
      }
      metrics.lookupsHit.increment()
      metrics.readsInFlight.increment()
      return CacheHit(
        meta: found.meta,
        handler: InstrumentedHitHandler(base: found.handler, metrics: metrics, start: sampled ? start : nil))
    } catch {
      metrics.lookupsError.increment()
      metrics.record(error)
      span.recordError(error)
      span.attributes["error.type"] = error.kind
      throw error
    }
  }

  public func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Miss {
    let span = tracer.startSpan(
      "cache.miss_handler", context: ServiceContext.current ?? .topLevel, ofKind: .internal,
      at: DefaultTracerClock.now, function: #function, file: #fileID, line: #line)
    defer { span.end() }
    if span.isRecording {
      span.attributes["cache.tier"] = metrics.tier
      span.attributes["cache.key_hash"] = key.combinedHash.hex
    }
    do {
      let handler = try await base.missHandler(for: key, meta: meta)
      metrics.writesInFlight.increment()
      return InstrumentedMissHandler(base: handler, metrics: metrics, statistics: statistics)
    } catch {
      metrics.record(error)
      span.recordError(error)
      span.attributes["error.type"] = error.kind
      throw error
    }
  }

  public func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool {
    let span = tracer.startSpan(
      "cache.purge", context: ServiceContext.current ?? .topLevel, ofKind: .internal, at: DefaultTracerClock.now,
      function: #function, file: #fileID, line: #line)
    defer { span.end() }
    let start = NIODeadline.now()
    do {
      let removed = try await base.purge(key, reason: reason)
      metrics.purgeDuration.recordNanoseconds(NIODeadline.now().uptimeNanoseconds - start.uptimeNanoseconds)
      (removed ? metrics.purgesRemoved : metrics.purgesMissing).increment()
      if let statistics { metrics.record(statistics.statistics) }
      if span.isRecording {
        span.attributes["cache.tier"] = metrics.tier
        span.attributes["cache.key_hash"] = key.combinedHash.hex
        span.attributes["cache.purge_reason"] = reason.rawValue
        span.attributes["cache.removed"] = removed
      }
      return removed
    } catch {
      metrics.record(error)
      span.recordError(error)
      span.attributes["error.type"] = error.kind
      throw error
    }
  }

  public func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    do {
      return try await base.updateMeta(key, meta: meta)
    } catch {
      metrics.record(error)
      throw error
    }
  }
}

extension InstrumentedStorage: HealthReporting where Base: HealthReporting {
  public func health() async -> [TierHealth] { await base.health() }
}

extension InstrumentedStorage: StatisticsReporting where Base: StatisticsReporting {
  public var statistics: StorageStatistics { base.statistics }
}

extension Timer {
  @inline(__always)
  func recordNanoseconds(_ nanoseconds: UInt64) {
    recordNanoseconds(Int64(clamping: nanoseconds))
  }
}
