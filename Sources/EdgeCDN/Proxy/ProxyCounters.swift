import Synchronization

/// Request outcomes counted with relaxed atomics (one add per request). Tests read them;
/// they are the seam the observability work turns into Prometheus metrics.
public final class ProxyCounters: Sendable {
  public enum Kind: Int, CaseIterable, Sendable {
    case hits, misses, coalesced, revalidated, staleWhileRevalidate, staleIfError, passes, originErrors, purges
  }

  public struct Snapshot: Hashable, Sendable {
    var values: [Int]
    public subscript(_ kind: Kind) -> Int { values[kind.rawValue] }
  }

  private let cells = Kind.allCases.map { _ in CounterCell() }

  func count(_ kind: Kind) {
    cells[kind.rawValue].value.add(1, ordering: .relaxed)
  }

  public func snapshot() -> Snapshot {
    Snapshot(values: cells.map { $0.value.load(ordering: .relaxed) })
  }
}

final class CounterCell: Sendable {
  let value = Atomic<Int>(0)
}
