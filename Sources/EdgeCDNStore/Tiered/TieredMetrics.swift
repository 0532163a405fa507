import CoreMetrics

/// The tiered store's own counters, as handles made once (docs/metrics.md lists them).
/// Per-tier lookups and bytes are counted by wrapping each tier in InstrumentedStorage.
final class TieredMetrics: Sendable {
  let memoryWriteFailures: Counter
  let diskWriteFailures: Counter
  let sharedWriteFailures: Counter
  let sharedDropped: Counter
  let sharedRetries: Counter
  let sharedRetriesExhausted: Counter
  let sharedFailures: Counter
  let sharedRejected: Counter
  let promotions: Counter
  let sharedFills: Counter

  init(factory: any MetricsFactory) {
    func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter {
      StoreMetrics.counter(name, dimensions: dimensions, factory: factory)
    }
    memoryWriteFailures = counter("tier_write_failures_total", [("tier", "memory")])
    diskWriteFailures = counter("tier_write_failures_total", [("tier", "disk")])
    sharedWriteFailures = counter("tier_write_failures_total", [("tier", "shared")])
    sharedDropped = counter("shared_dropped_total")
    sharedRetries = counter("shared_retries_total")
    sharedRetriesExhausted = counter("shared_retries_exhausted_total")
    sharedFailures = counter("shared_call_failures_total")
    sharedRejected = counter("shared_calls_rejected_total")
    promotions = counter("promotions_total")
    sharedFills = counter("shared_fills_total")
  }
}
