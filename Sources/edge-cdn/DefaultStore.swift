import CoreMetrics
import EdgeCDN
import EdgeCDNStore
import Logging
import Prometheus

/// The store `edge-cdn` embeds: the one place that chooses it. RAM over a disk tier in a
/// local folder (`disk.enabled=false` runs RAM only), each tier instrumented into one
/// Prometheus registry, composed by `TieredStore`. The proxy is generic over `Storage`
/// and does not change with it.
struct DefaultStore: Sendable {
  typealias Memory = InstrumentedStorage<MemoryStore>
  typealias Disk = InstrumentedStorage<DiskStore>
  typealias Store = TieredStore<Memory, Disk>

  let store: Store
  let diskStore: DiskStore?
  let diskMetrics: DiskTierMetrics?
  /// Each tier's metrics, whose in-flight gauges /metrics publishes before rendering.
  let tierMetrics: [StoreMetrics]
  /// The registry's factory with the store's buckets, for the proxy's metrics too.
  let metricsFactory: PrometheusMetricsFactory

  /// Store timers measure microseconds, not the seconds swift-prometheus's default
  /// buckets (5 ms and up) are made for.
  static func metricsFactory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
    var factory = PrometheusMetricsFactory(registry: registry)
    let buckets: [Duration] = [
      .microseconds(5), .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100),
      .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(25),
      .milliseconds(100), .milliseconds(500), .seconds(2),
    ]
    for name in [
      "lookup_duration_seconds", "first_byte_duration_seconds", "write_finish_duration_seconds",
      "purge_duration_seconds",
    ] {
      factory.durationHistogramBuckets["edge_cdn_store_\(name)"] = buckets
    }
    // The proxy's request latencies span event-loop hits (microseconds) to slow origins.
    for label in ProxyMetrics.durationLabels {
      factory.durationHistogramBuckets[label] = ProxyMetrics.durationBuckets
    }
    return factory
  }

  static func make(
    configuration: StoreConfiguration, registry: PrometheusCollectorRegistry, logger: Logger
  ) async throws -> DefaultStore {
    let factory = metricsFactory(registry: registry)
    // Latency sampled on one lookup in 64: a timer per hit costs more than the hit. Hit
    // counters go to Prometheus in batches per thread, whole at each scrape (`publish()`).
    let memoryMetrics = StoreMetrics(
      tier: MemoryStore.tierName, latencySampleInterval: 64, counterBatch: 256, factory: factory)
    let memory = InstrumentedStorage(
      try MemoryStore(
        configuration: configuration.memory, observer: MetricsStorageObserver(metrics: memoryMetrics),
        logger: logger),
      metrics: memoryMetrics)
    var disk: Disk?
    var diskStore: DiskStore?
    var diskMetrics: DiskTierMetrics?
    var tierMetrics = [memoryMetrics]
    if let diskConfiguration = configuration.disk {
      let diskTierMetrics = StoreMetrics(tier: DiskStore.tierName, latencySampleInterval: 8, factory: factory)
      let opened = try await DiskStore.open(
        configuration: diskConfiguration, observer: MetricsStorageObserver(metrics: diskTierMetrics))
      logger.info(
        "disk tier open",
        metadata: [
          "path": "\(diskConfiguration.path)", "objects": "\(opened.recoveryReport.objectsIndexed)",
          "from_snapshot": "\(opened.recoveryReport.fromSnapshot)",
        ])
      disk = InstrumentedStorage(opened, metrics: diskTierMetrics)
      tierMetrics.append(diskTierMetrics)
      diskStore = opened
      diskMetrics = DiskTierMetrics(store: opened, factory: factory)
    }
    let tiered = TieredStore(
      memory: memory, disk: disk, configuration: tieredConfiguration(configuration), metricsFactory: factory,
      logger: logger)
    return DefaultStore(
      store: tiered, diskStore: diskStore, diskMetrics: diskMetrics, tierMetrics: tierMetrics,
      metricsFactory: factory)
  }

  /// The tiered settings as read, with the RAM tier's object limit filled in: `TieredStore` finds
  /// it on a bare `MemoryStore` but not through `InstrumentedStorage`, and without it objects too
  /// large for RAM would be offered to RAM (and refused there) instead of going to disk alone.
  static func tieredConfiguration(_ configuration: StoreConfiguration) -> TieredStoreConfiguration {
    var tiered = configuration.tiered
    if tiered.memoryMaxObjectSize == nil { tiered.memoryMaxObjectSize = configuration.memory.maxObjectSize }
    return tiered
  }

  /// Nil when every tier is ok or degraded (still serving), else why not ready.
  func healthProblem() async -> String? {
    let failed = await store.health().filter { $0.status == .failed }
    return failed.isEmpty ? nil : failed.map(\.description).joined(separator: "; ")
  }

  /// Called once after the listeners drained: the disk tier writes its open region,
  /// fsyncs and leaves an index snapshot for a fast next start.
  func flush(logger: Logger) async {
    do {
      try await diskStore?.close()
      logger.info(
        "store flushed",
        metadata: [
          "memory_objects": "\(store.memoryTier.base.objectCount)",
          "disk_objects": "\(diskStore?.statistics.objects ?? 0)",
        ])
    } catch {
      logger.error("store flush failed", metadata: ["error": "\(error)"])
    }
  }
}

/// /metrics: the store's metrics from the registry, then the proxy's request counters.
struct ProxyMetricsExposition<Store: Storage>: MetricsExposition {
  let registry: PrometheusCollectorRegistry
  let diskMetrics: DiskTierMetrics?
  let tierMetrics: [StoreMetrics]
  let proxy: @Sendable () -> CachingProxy<Store>?

  func render() async -> String {
    diskMetrics?.refresh()
    for metrics in tierMetrics { metrics.publish() }
    let text = registry.emitToString()
    guard let stats = proxy()?.stats else { return text }
    return text + stats.prometheusText
  }
}
