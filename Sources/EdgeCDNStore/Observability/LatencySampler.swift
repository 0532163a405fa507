/// Decides which operations record a latency observation: one in `interval`.
///
/// Counters stay exact; only histogram observations are sampled, because the common
/// backends take a lock per observation (swift-prometheus's `Histogram.record`). With
/// `interval == 1` no shared counter is touched at all. The store's operations and
/// edge-cdn's event-loop hits (`ProxyMetrics`) each have one.
public final class LatencySampler: Sendable {
  private let interval: UInt64
  /// Per thread (`StripedCounters`): one in `interval` of each thread's operations is
  /// sampled, without a line shared by the threads.
  private let ticks = StripedCounters(count: 1)

  public init(interval: Int) {
    self.interval = UInt64(max(1, interval))
  }

  @inline(__always)
  public func shouldSample() -> Bool {
    shouldSample(stripe: ThreadStripe.current)
  }

  /// The same, with the caller's `ThreadStripe.current`.
  @inline(__always)
  func shouldSample(stripe: Int) -> Bool {
    guard interval > 1 else { return true }
    return UInt64(truncatingIfNeeded: ticks.add(1, to: 0, stripe: stripe)) % interval == 0
  }
}
