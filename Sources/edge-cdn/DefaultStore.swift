import EdgeCDN
import EdgeCDNStore
import Logging
import Prometheus

/// The store `edge-cdn` embeds: the one place that chooses it. Today the RAM tier,
/// instrumented (store metrics into a Prometheus registry); when the disk tier lands,
/// this becomes RAM + disk in a local folder and `flush` saves the eviction state. The
/// proxy is generic over `Storage` and does not change.
enum DefaultStore {
  typealias Store = InstrumentedStorage<MemoryStore>

  static func make(
    memoryMiB: Int, maxObjectMiB: Int, registry: PrometheusCollectorRegistry
  ) throws -> Store {
    let memory = try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: memoryMiB << 20, maxObjectSize: maxObjectMiB << 20))
    // Latency sampled on one lookup in 64: a timer per hit costs more than the hit.
    let metrics = StoreMetrics(
      tier: MemoryStore.tierName, latencySampleInterval: 64, factory: PrometheusMetricsFactory(registry: registry))
    return InstrumentedStorage(memory, metrics: metrics)
  }

  /// Nil when every tier is ok or degraded (still serving), else why not ready.
  static func healthProblem(_ store: Store) async -> String? {
    let failed = await store.health().filter { $0.status == .failed }
    return failed.isEmpty ? nil : failed.map(\.description).joined(separator: "; ")
  }

  /// Called once after the listeners drained. RAM holds nothing to persist.
  static func flush(_ store: Store, logger: Logger) async {
    logger.info(
      "store flushed", metadata: ["objects": "\(store.base.objectCount)", "bytes": "\(store.base.usedBytes)"])
  }
}

/// /metrics: the store's metrics from the registry, then the proxy's request counters.
struct ProxyMetricsExposition<Store: Storage>: MetricsExposition {
  let registry: PrometheusCollectorRegistry
  let proxy: @Sendable () -> CachingProxy<Store>?

  func render() async -> String {
    var text = registry.emitToString()
    guard let stats = proxy()?.stats else { return text }
    text += "# TYPE edge_cdn_proxy_requests_total counter\n"
    for kind in ProxyCounters.Kind.allCases {
      text += "edge_cdn_proxy_requests_total{outcome=\"\(kind)\"} \(stats[kind])\n"
    }
    return text
  }
}
