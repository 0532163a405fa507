import EdgeCDNStore

/// Request outcomes counted with relaxed atomics (one add per request), in per-thread
/// stripes (`StripedCounters`) so that the event loops counting hits do not share a
/// cache line; a snapshot sums them. Tests read them; /metrics renders them.
public final class ProxyCounters: Sendable {
  public enum Kind: Int, CaseIterable, Sendable {
    case hits, misses, coalesced, revalidated, staleWhileRevalidate, staleIfError, passes, originErrors, purges

    /// The `outcome` label value on /metrics (Prometheus style: snake_case).
    public var label: String {
      switch self {
      case .hits: "hit"
      case .misses: "miss"
      case .coalesced: "coalesced"
      case .revalidated: "revalidated"
      case .staleWhileRevalidate: "stale_while_revalidate"
      case .staleIfError: "stale_if_error"
      case .passes: "pass"
      case .originErrors: "origin_error"
      case .purges: "purge"
      }
    }
  }

  public struct Snapshot: Hashable, Sendable {
    var values: [Int]
    public subscript(_ kind: Kind) -> Int { values[kind.rawValue] }

    /// The counters in Prometheus's text format (docs/metrics.md, "Proxy requests"), for
    /// the admin listener's /metrics after the store's registry.
    public var prometheusText: String {
      var text = "# HELP edge_cdn_proxy_requests_total Requests served by the proxy, by cache outcome.\n"
      text += "# TYPE edge_cdn_proxy_requests_total counter\n"
      for kind in Kind.allCases {
        text += "edge_cdn_proxy_requests_total{outcome=\"\(kind.label)\"} \(self[kind])\n"
      }
      return text
    }
  }

  private let cells = StripedCounters(count: Kind.allCases.count)

  @inline(__always)
  func count(_ kind: Kind) {
    cells.add(1, to: kind.rawValue)
  }

  public func snapshot() -> Snapshot {
    Snapshot(values: Kind.allCases.map { cells.sum($0.rawValue) })
  }
}
