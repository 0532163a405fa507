public import CoreMetrics
import Synchronization

/// The metrics of one tier, created once so that recording on the hot path is a call
/// on a pre-built handle: no label formatting, no dictionary lookup, no allocation.
///
/// Names follow Prometheus conventions (`_total` counters, `_seconds` durations,
/// `_bytes` sizes) under the `edge_cdn_store_` prefix, with a `tier` label; docs/metrics.md
/// lists them all. Any swift-metrics backend plugs in through `MetricsSystem.bootstrap`,
/// or explicitly through `factory` (tests and the overhead benchmark do that).
///
/// A class, not a struct: it holds some twenty handles, and each hit handler and
/// miss handler keeps it; a struct would cost a retain per handle per copy, a class one.
public final class StoreMetrics: Sendable {
  public let tier: String

  /// Batched (see `BatchedCounter`, `counterBatch`): added to on every hit.
  let lookupsHit: BatchedCounter
  let lookupsMiss: Counter
  let lookupsError: Counter
  let lookupDuration: Timer
  let firstByteDuration: Timer
  let writeFinishDuration: Timer
  let purgeDuration: Timer
  /// Batched as `lookupsHit`.
  let bytesRead: BatchedCounter
  let bytesWritten: Counter
  let readsInFlight: Meter
  /// Reads in flight, counted here and published to `readsInFlight` on sampled lookups
  /// and by `publishGauges()`, which edge-cdn's /metrics calls before it renders. Why
  /// not the gauge's own increment and decrement: with swift-prometheus each is an
  /// existential call and a compare-and-swap loop on a Double, twice per hit, 1.95% of a
  /// 1 KiB RAM hit's CPU in a profile; an atomic add of ours is one instruction. Writes
  /// are rarer and slower and keep the gauge exact.
  private let readsInFlightCount = Atomic<Int>(0)
  let writesInFlight: Meter
  let writesFinished: Counter
  let writesAborted: Counter
  let admissionsRejected: Counter
  let purgesRemoved: Counter
  let purgesMissing: Counter
  let storedObjects: Meter
  let storedBytes: Meter
  private let errorsByKind: [String: Counter]
  private let errorsOther: Counter
  private let removalsByReason: [StorageRemoval.Reason: Counter]

  /// How often a lookup's latency (and its time to first byte) is recorded: one
  /// lookup in `latencySampleInterval`; 1 records all. Sampling exists because the
  /// usual backends (swift-prometheus) take a lock per histogram observation and each
  /// observation costs two clock reads, which together measured as most of the
  /// wrapper's cost on a RAM hit; counters stay exact. Default 8.
  public let latencySampleInterval: Int
  /// The counters added to on every hit (lookup hits, bytes read) reach the backend in
  /// batches of this many per thread (`BatchedCounter`), and whole at `publish()`; 1,
  /// the default, hands every add over at once. A pull backend whose exposition calls
  /// `publish()` first (edge-cdn's /metrics) shows exact counts with any batch.
  public let counterBatch: Int

  public static let errorKinds = [
    "corrupt_metadata", "corrupt_body", "invalid_range", "writer_failed", "object_too_large",
    "insufficient_space", "invalid_state", "io", "unavailable", "cancelled",
  ]

  /// Every store counter is named `edge_cdn_store_<name>` (docs/metrics.md); the tiered
  /// store's own counters are made here too.
  static func counter(_ name: String, dimensions: [(String, String)], factory: any MetricsFactory) -> Counter {
    Counter(label: "edge_cdn_store_\(name)", dimensions: dimensions, factory: factory)
  }

  public init(
    tier: String, latencySampleInterval: Int = 8, counterBatch: Int = 1,
    factory: any MetricsFactory = MetricsSystem.factory
  ) {
    self.tier = tier
    self.latencySampleInterval = max(1, latencySampleInterval)
    self.counterBatch = max(1, counterBatch)
    let tierLabel = [("tier", tier)]
    func counter(_ name: String, _ extra: [(String, String)] = []) -> Counter {
      Self.counter(name, dimensions: tierLabel + extra, factory: factory)
    }
    func timer(_ name: String) -> Timer {
      Timer(label: "edge_cdn_store_\(name)", dimensions: tierLabel, factory: factory)
    }
    func meter(_ name: String) -> Meter {
      Meter(label: "edge_cdn_store_\(name)", dimensions: tierLabel, factory: factory)
    }
    lookupsHit = BatchedCounter(counter("lookups_total", [("outcome", "hit")]), batch: self.counterBatch)
    lookupsMiss = counter("lookups_total", [("outcome", "miss")])
    lookupsError = counter("lookups_total", [("outcome", "error")])
    lookupDuration = timer("lookup_duration_seconds")
    firstByteDuration = timer("first_byte_duration_seconds")
    writeFinishDuration = timer("write_finish_duration_seconds")
    purgeDuration = timer("purge_duration_seconds")
    bytesRead = BatchedCounter(counter("read_bytes_total"), batch: self.counterBatch)
    bytesWritten = counter("written_bytes_total")
    readsInFlight = meter("reads_in_flight")
    writesInFlight = meter("writes_in_flight")
    writesFinished = counter("writes_total", [("outcome", "finished")])
    writesAborted = counter("writes_total", [("outcome", "aborted")])
    admissionsRejected = counter("admissions_rejected_total")
    purgesRemoved = counter("purges_total", [("outcome", "removed")])
    purgesMissing = counter("purges_total", [("outcome", "missing")])
    storedObjects = meter("objects")
    storedBytes = meter("bytes")
    var errors: [String: Counter] = [:]
    for kind in Self.errorKinds { errors[kind] = counter("errors_total", [("kind", kind)]) }
    errorsByKind = errors
    errorsOther = counter("errors_total", [("kind", "other")])
    var removals: [StorageRemoval.Reason: Counter] = [:]
    for reason in StorageRemoval.Reason.allCases {
      removals[reason] = counter("removals_total", [("reason", reason.rawValue)])
    }
    removalsByReason = removals
  }

  @inline(__always)
  func readOpened() { readsInFlightCount.wrappingAdd(1, ordering: .relaxed) }

  /// A hit answered synchronously (`ImmediateLookup`), with the caller's
  /// `ThreadStripe.current`. A method of its own, not inlined, so that each counter is a
  /// property of this call's `self`: inlined into the caller, each was retained and
  /// released around its increment, on a reference count every event loop shares.
  @inline(never)
  func countImmediateHit(readBytes: Int, stripe: Int) {
    lookupsHit.increment(stripe: stripe)
    if readBytes > 0 { bytesRead.increment(by: readBytes, stripe: stripe) }
  }

  @inline(__always)
  func readClosed() { readsInFlightCount.wrappingSubtract(1, ordering: .relaxed) }

  /// Publishes the gauges kept in our own atomics (reads in flight) to the backend.
  /// Called on sampled lookups; an exposition that renders on demand calls it first so
  /// that what it shows is exact.
  public func publishGauges() {
    readsInFlight.set(readsInFlightCount.load(ordering: .relaxed))
  }

  /// Hands the batched counters' remainders to the backend and publishes the gauges:
  /// what an exposition that renders on demand calls first, so that what it shows is exact.
  public func publish() {
    lookupsHit.publish()
    bytesRead.publish()
    publishGauges()
  }

  /// Counts an error by its kind; off the hot path (errors are rare).
  func record(_ error: CacheError) {
    (errorsByKind[error.kind] ?? errorsOther).increment()
    switch error {
    case .objectTooLarge, .insufficientSpace: admissionsRejected.increment()
    default: break
    }
  }

  func record(_ removal: StorageRemoval) {
    removalsByReason[removal.reason]?.increment()
  }

  /// Sets the objects and bytes gauges from a tier's own accounting.
  func record(_ statistics: StorageStatistics) {
    storedObjects.set(statistics.objectCount)
    storedBytes.set(statistics.usedBytes)
  }
}

/// Forwards a tier's removal reports to its metrics, and to another observer if any.
public struct MetricsStorageObserver: StorageObserver {
  let metrics: StoreMetrics
  let next: (any StorageObserver)?

  public init(metrics: StoreMetrics, next: (any StorageObserver)? = nil) {
    self.metrics = metrics
    self.next = next
  }

  public func storage(_ tier: String, removed removal: StorageRemoval) {
    metrics.record(removal)
    next?.storage(tier, removed: removal)
  }
}
