import CoreMetrics
public import NIOCore
public import Tracing

/// The non-generic half of the instrumented wrappers: clocks, spans and metric
/// updates, compiled once in this module and called from the specialised wrappers.
///
/// Spans start under the caller's task-local `ServiceContext` (a request's span). The
/// tracer is read once at init (`InstrumentationSystem.tracer` takes a lock per read),
/// and with no tracer bootstrapped no span is started at all, which saves a task-local
/// read and an existential box per operation.
@usableFromInline
final class OperationProbe: Sendable {
  let metrics: StoreMetrics
  let tracer: (any Tracer)?
  let statistics: (any StatisticsReporting)?
  let sampler: LatencySampler

  init(metrics: StoreMetrics, tracer: any Tracer, statistics: (any StatisticsReporting)?) {
    self.metrics = metrics
    self.tracer = tracer is NoOpTracer ? nil : tracer
    self.statistics = statistics
    self.sampler = LatencySampler(interval: metrics.latencySampleInterval)
  }

  /// What an operation carries from its start to its end.
  @usableFromInline
  struct Started {
    @usableFromInline let span: (any Span)?
    /// nil when the latency of this operation is not sampled.
    @usableFromInline let start: NIODeadline?
  }

  private func startSpan(_ name: String) -> (any Span)? {
    guard let tracer else { return nil }
    return tracer.startSpan(
      name, context: ServiceContext.current ?? .topLevel, ofKind: .internal, at: DefaultTracerClock.now,
      function: name, file: #fileID, line: #line)
  }

  @inline(__always)
  static func nanoseconds(since start: NIODeadline) -> Int64 {
    Int64(clamping: NIODeadline.now().uptimeNanoseconds &- start.uptimeNanoseconds)
  }

  // MARK: Lookup

  @usableFromInline
  func lookupStarted() -> Started {
    Started(span: startSpan("cache.lookup"), start: sampler.shouldSample() ? NIODeadline.now() : nil)
  }

  /// Records the outcome; returns the start instant for the first-byte timer of a hit.
  @usableFromInline
  func lookupEnded(_ started: Started, key: CacheKey, hit: Bool) -> NIODeadline? {
    if let start = started.start { metrics.lookupDuration.recordNanoseconds(Self.nanoseconds(since: start)) }
    if let span = started.span {
      if span.isRecording {
        span.attributes["cache.tier"] = metrics.tier
        span.attributes["cache.key_hash"] = key.combinedHash.hex
        span.attributes["cache.outcome"] = hit ? "hit" : "miss"
      }
      span.end()
    }
    guard hit else {
      metrics.lookupsMiss.increment()
      return nil
    }
    metrics.lookupsHit.increment()
    metrics.readOpened()
    if started.start != nil { metrics.publishGauges() }
    return started.start
  }

  /// Counts and traces a failed operation; returns the error for the caller to throw.
  @usableFromInline
  func failed(_ started: Started?, _ error: CacheError) -> CacheError {
    metrics.record(error)
    if let span = started?.span {
      span.recordError(error)
      span.attributes["error.type"] = error.kind
      span.end()
    }
    return error
  }

  @usableFromInline
  func lookupFailed(_ started: Started, _ error: CacheError) -> CacheError {
    metrics.lookupsError.increment()
    return failed(started, error)
  }

  // MARK: Reads

  @usableFromInline
  func firstByte(since start: NIODeadline) {
    metrics.firstByteDuration.recordNanoseconds(Self.nanoseconds(since: start))
  }

  @usableFromInline
  func read(_ bytes: Int) { metrics.bytesRead.increment(by: bytes) }

  @usableFromInline
  func readClosed() { metrics.readClosed() }

  @usableFromInline
  func readFailed(_ error: CacheError) -> CacheError {
    metrics.record(error)
    return error
  }

  // MARK: Writes

  @usableFromInline
  func writeStarted(key: CacheKey) -> Started {
    let span = startSpan("cache.miss_handler")
    if let span, span.isRecording {
      span.attributes["cache.tier"] = metrics.tier
      span.attributes["cache.key_hash"] = key.combinedHash.hex
    }
    return Started(span: span, start: nil)
  }

  @usableFromInline
  func writeOpened(_ started: Started) {
    started.span?.end()
    metrics.writesInFlight.increment()
  }

  @usableFromInline
  func written(_ bytes: Int) { metrics.bytesWritten.increment(by: bytes) }

  @usableFromInline
  func writeFinished(since start: NIODeadline) {
    metrics.writeFinishDuration.recordNanoseconds(Self.nanoseconds(since: start))
    metrics.writesFinished.increment()
    if let statistics { metrics.record(statistics.storageStatistics) }
  }

  /// The writes-in-flight gauge, ended exactly once per write by the miss handler.
  @usableFromInline
  func writeClosed() { metrics.writesInFlight.decrement() }

  @usableFromInline
  func writeAborted() { metrics.writesAborted.increment() }

  // MARK: Purge

  @usableFromInline
  func purgeStarted() -> Started {
    Started(span: startSpan("cache.purge"), start: NIODeadline.now())
  }

  @usableFromInline
  func purgeEnded(_ started: Started, key: CompactCacheKey, reason: PurgeReason, removed: Bool) {
    if let start = started.start { metrics.purgeDuration.recordNanoseconds(Self.nanoseconds(since: start)) }
    (removed ? metrics.purgesRemoved : metrics.purgesMissing).increment()
    if let statistics { metrics.record(statistics.storageStatistics) }
    if let span = started.span {
      if span.isRecording {
        span.attributes["cache.tier"] = metrics.tier
        span.attributes["cache.key_hash"] = key.combinedHash.hex
        span.attributes["cache.purge_reason"] = reason.rawValue
        span.attributes["cache.removed"] = removed
      }
      span.end()
    }
  }
}
