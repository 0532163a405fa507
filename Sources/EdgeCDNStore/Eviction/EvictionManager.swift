/// Tracks popularity and size of stored objects and decides what leaves: pingora's
/// `EvictionManager`, driven by the cache layer beside the `Storage`.
///
/// Sizes are weights in bytes. Every method is synchronous and short (a shard lock
/// at most) because it sits on the hit path; only save and load touch the disk.
public protocol EvictionManager: Sendable {
  /// Bytes tracked now.
  var totalSize: Int { get }
  /// Objects tracked now.
  var totalItems: Int { get }
  /// Bytes evicted since start; monotonic, for a Prometheus counter.
  var evictedSize: Int { get }
  /// Objects evicted since start; monotonic.
  var evictedItems: Int { get }

  /// Tracks a new object (or updates a tracked one) and returns the keys that must
  /// leave to stay within the limit, already deducted from the totals. The list may
  /// hold `key` itself: a policy with admission (S3-FIFO, TinyUFO) can decline a new
  /// object at once, and the store then drops it like any other victim.
  func admit(_ key: CompactCacheKey, size: Int, freshUntil: CacheTime) -> [CompactCacheKey]

  /// Grows a tracked object (a streaming append); returns keys to evict.
  func incrementWeight(_ key: CompactCacheKey, delta: Int, maxWeight: Int?) -> [CompactCacheKey]

  /// Stops tracking a key (it was purged or evicted by the store itself).
  func remove(_ key: CompactCacheKey)

  /// Records a hit. Tracks the key if it is unknown, without evicting; returns
  /// whether it was already tracked.
  @discardableResult
  func access(_ key: CompactCacheKey, size: Int, freshUntil: CacheTime) -> Bool

  /// Whether the key is tracked, without touching its popularity.
  func peek(_ key: CompactCacheKey) -> Bool

  /// Evicts at least `bytes` bytes (or everything) whatever the limit, returning the
  /// keys. Not in pingora: a tier with a hard budget (RAM) needs room for a write in
  /// progress before that write is admitted.
  func evict(atLeast bytes: Int) -> [CompactCacheKey]

  /// Persists the state under `directory` (write new file, fsync, rename).
  func save(to directory: String) async throws(CacheError)

  /// Restores a saved state. A missing file leaves the manager empty; a corrupt,
  /// truncated or foreign one throws and leaves it empty too.
  func load(from directory: String) async throws(CacheError)

  /// RAM the manager spends per tracked key, ghost and sketch included, at a typical
  /// load: what a store charges per object for it, so that its budget covers the
  /// manager too (see `edge-cdn-bench eviction` for the measured figures).
  var trackingBytesPerKey: Int { get }
}

extension EvictionManager {
  /// A manager that does not say: charged like the most expensive of ours, the LRU.
  public var trackingBytesPerKey: Int { 72 }
}
