/// Hears about objects a tier removes, so whoever tracks popularity (an
/// EvictionManager above the tier, a tiered store, metrics) stays in sync.
///
/// Called synchronously on the removing task, outside the tier's locks: keep it short
/// (hand work off to a task or a queue if it is more than a counter or a call into a
/// sharded manager).
public protocol StorageObserver: Sendable {
  func storage(_ tier: String, removed removal: StorageRemoval)
}

/// One object that left a tier.
public struct StorageRemoval: Sendable, Hashable {
  public var key: CompactCacheKey
  /// The weight it was charged (body and meta bytes).
  public var weight: Int
  public var reason: Reason

  public enum Reason: String, Sendable, Hashable, CaseIterable {
    /// The tier needed room for a write within its byte budget.
    case capacity
    /// purge(reason: .eviction): the eviction manager chose it.
    case evictionPurge = "eviction_purge"
    /// purge(reason: .invalidation): an operator or the cache layer asked.
    case invalidation
    /// A new write of the same key replaced it.
    case replaced
    /// It failed an integrity check when read.
    case corrupt
  }

  public init(key: CompactCacheKey, weight: Int, reason: Reason) {
    self.key = key
    self.weight = weight
    self.reason = reason
  }
}
