import Synchronization

/// Counters of the disk tier: monotonic since open, for logs, tests and metrics.
public struct DiskStoreStatistics: Sendable, Hashable {
  public var objects: Int
  public var indexBytes: Int
  public var usedBytes: Int
  /// Like `usedBytes` but counting only the filled part of the open region: the
  /// numerator of space amplification.
  public var filledBytes: Int
  public var regionsReclaimed: Int
  /// Objects that left because their region was reclaimed.
  public var objectsReclaimed: Int
  public var objectsReinserted: Int
  public var purges: Int
  /// Records that failed a check when read (served as a miss and purged).
  public var corruptRecords: Int
  public var ioErrors: Int
  /// Regions whose write failed (their objects were dropped).
  public var regionsLost: Int
  public var healthy: Bool
  public var lastError: String?
}

/// The atomics behind `DiskStoreStatistics`.
final class DiskCounters: Sendable {
  let regionsReclaimed = Atomic<Int>(0)
  let objectsReclaimed = Atomic<Int>(0)
  let objectsReinserted = Atomic<Int>(0)
  let purges = Atomic<Int>(0)
  let corruptRecords = Atomic<Int>(0)
  let ioErrors = Atomic<Int>(0)
  let regionsLost = Atomic<Int>(0)
  /// False after an I/O failure until a later flush succeeds.
  let healthy = Atomic<Bool>(true)
  let lastError = Mutex<String?>(nil)

  func count(_ counter: borrowing Atomic<Int>, _ n: Int = 1) { counter.add(n, ordering: .relaxed) }
}
