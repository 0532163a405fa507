public import CoreMetrics
import Synchronization

/// The disk tier's own figures as metrics: region reclaim, reinsertion, corruption,
/// I/O failures, the index's RAM and the last recovery.
///
/// The tier keeps these as atomics (they change off the request path, in region
/// flushes and reclaims); `refresh()` turns them into metrics. Call it before each
/// exposition (edge-cdn's /metrics does), so the figures are exact at scrape time
/// without a timer. Monotonic counts become swift-metrics counters incremented by
/// the change since the last refresh.
public final class DiskTierMetrics: Sendable {
  private let store: DiskStore
  private let regionsReclaimed: Counter
  private let objectsReclaimed: Counter
  private let objectsReinserted: Counter
  private let corruptRecords: Counter
  private let ioErrors: Counter
  private let regionsLost: Counter
  private let indexBytes: Meter
  private let usedBytes: Meter
  private let capacityBytes: Meter
  private let objects: Meter
  private let healthy: Meter
  private let last = Mutex(DiskStoreStatistics?.none)

  public init(store: DiskStore, factory: any MetricsFactory = MetricsSystem.factory) {
    self.store = store
    let tier = [("tier", DiskStore.tierName)]
    func counter(_ name: String) -> Counter {
      Counter(label: "edge_cdn_store_disk_\(name)", dimensions: tier, factory: factory)
    }
    func meter(_ name: String) -> Meter {
      Meter(label: "edge_cdn_store_disk_\(name)", dimensions: tier, factory: factory)
    }
    regionsReclaimed = counter("regions_reclaimed_total")
    objectsReclaimed = counter("objects_reclaimed_total")
    objectsReinserted = counter("objects_reinserted_total")
    corruptRecords = counter("corrupt_records_total")
    ioErrors = counter("io_errors_total")
    regionsLost = counter("regions_lost_total")
    indexBytes = meter("index_bytes")
    usedBytes = meter("used_bytes")
    capacityBytes = meter("capacity_bytes")
    objects = meter("objects")
    healthy = meter("healthy")
    let report = store.recoveryReport
    Meter(label: "edge_cdn_store_disk_recovery_objects", dimensions: tier, factory: factory).set(report.objectsIndexed)
    Meter(label: "edge_cdn_store_disk_recovery_regions_scanned", dimensions: tier, factory: factory).set(
      report.regionsScanned)
    Meter(label: "edge_cdn_store_disk_recovery_corrupt_records", dimensions: tier, factory: factory).set(
      report.corruptRecords)
    Meter(label: "edge_cdn_store_disk_recovery_from_snapshot", dimensions: tier, factory: factory).set(
      report.fromSnapshot ? 1 : 0)
    refresh()
  }

  /// Reads the tier's statistics and updates the metrics.
  public func refresh() {
    // Read and swap under the lock, so two concurrent refreshes never count a change twice.
    let (now, previous) = last.withLock { last -> (DiskStoreStatistics, DiskStoreStatistics?) in
      let now = store.statistics
      defer { last = now }
      return (now, last)
    }
    func delta(_ path: KeyPath<DiskStoreStatistics, Int>) -> Int {
      max(0, now[keyPath: path] - (previous?[keyPath: path] ?? 0))
    }
    regionsReclaimed.increment(by: delta(\.regionsReclaimed))
    objectsReclaimed.increment(by: delta(\.objectsReclaimed))
    objectsReinserted.increment(by: delta(\.objectsReinserted))
    corruptRecords.increment(by: delta(\.corruptRecords))
    ioErrors.increment(by: delta(\.ioErrors))
    regionsLost.increment(by: delta(\.regionsLost))
    indexBytes.set(now.indexBytes)
    usedBytes.set(now.usedBytes)
    capacityBytes.set(store.capacityBytes)
    objects.set(now.objects)
    healthy.set(now.healthy ? 1 : 0)
  }
}
