public import CoreMetrics
import Synchronization

/// A swift-metrics counter fed from per-thread stripes (`StripedCounters`): each thread
/// adds to its own stripe and hands the backend what it added every `batch` units of its
/// own, and `publish()` hands over all that is left.
///
/// Why: swift-prometheus's counter is one atomic shared by every thread; on a RAM hit,
/// where two event loops add to it a few microseconds apart, the line moves between the
/// cores on every add. With `batch` 1 every add goes to the backend at once (exact at
/// every instant, as a plain counter); with more, the backend lags by less than `batch`
/// per thread until `publish()`, which an exposition calls before it renders, so
/// what it shows is exact.
public final class BatchedCounter: Sendable {
  public let counter: Counter
  public let batch: Int
  /// Per stripe: 0 the total added, 1 the part of it handed to the backend. Both only
  /// grow; whoever moves the second up to the first hands the difference over, so no
  /// unit is handed over twice or lost.
  private let cells = StripedCounters(count: 2)
  private static let added = 0
  private static let handedOver = 1

  public init(_ counter: Counter, batch: Int) {
    self.counter = counter
    self.batch = max(1, batch)
  }

  @inline(__always)
  public func increment(by value: Int = 1) {
    increment(by: value, stripe: ThreadStripe.current)
  }

  /// The same, with the caller's `ThreadStripe.current`.
  @inline(__always)
  func increment(by value: Int = 1, stripe: Int) {
    guard batch > 1 else {
      counter.increment(by: value)
      return
    }
    let added = cells.cell(Self.added, stripe: stripe).pointee.wrappingAdd(value, ordering: .relaxed).newValue
    if added &- cells.value(Self.handedOver, stripe: stripe) >= batch { handOver(stripe: stripe) }
  }

  /// Hands everything added so far to the backend.
  public func publish() {
    for stripe in 0..<StripedCounters.stripeCount { handOver(stripe: stripe) }
  }

  private func handOver(stripe: Int) {
    let handedOver = cells.cell(Self.handedOver, stripe: stripe)
    var from = handedOver.pointee.load(ordering: .acquiring)
    while true {
      let to = cells.value(Self.added, stripe: stripe)
      // `to` may be older than `from` (two loads, another thread handing over between
      // them, or reordered on a weakly ordered CPU): never hand over a negative amount
      // (Prometheus' counter traps on it); the newer total is handed over by its adder.
      guard to &- from > 0 else { return }
      let (exchanged, original) = handedOver.pointee.compareExchange(
        expected: from, desired: to, ordering: .acquiringAndReleasing)
      if exchanged {
        counter.increment(by: to &- from)
        return
      }
      from = original
    }
  }
}
