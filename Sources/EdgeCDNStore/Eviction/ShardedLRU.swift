import Synchronization

/// A least-recently-used eviction manager split into shards, each behind its own
/// lock, as pingora's `lru::Manager`: concurrent hits on different keys rarely meet.
///
/// Recency is exact within a shard and approximate across shards: when the total
/// is over the limit, shards give up their least recent keys in turn. With uniform
/// key hashes the shards age alike, so the error is small and no global lock exists.
public final class ShardedLRU: EvictionManager {
  public static let policyName = "lru"

  /// The byte limit.
  public let capacity: Int
  private let shards: [Shard]
  private let size = Atomic<Int>(0)
  private let items = Atomic<Int>(0)
  private let evictedBytes = Atomic<Int>(0)
  private let evictedCount = Atomic<Int>(0)
  private let evictionCursor = Atomic<Int>(0)

  private final class Shard: Sendable {
    let list = Mutex(LinkedKeyList())
  }

  /// - Parameters:
  ///   - capacity: the byte limit; admissions beyond it evict.
  ///   - shardCount: independent locks; more shards, less contention (default 16).
  public init(capacity: Int, shardCount: Int = 16) {
    precondition(capacity >= 0 && shardCount > 0, "ShardedLRU needs capacity >= 0 and shardCount > 0")
    self.capacity = capacity
    self.shards = (0..<shardCount).map { _ in Shard() }
  }

  public var totalSize: Int { size.load(ordering: .relaxed) }
  public var totalItems: Int { items.load(ordering: .relaxed) }
  public var evictedSize: Int { evictedBytes.load(ordering: .relaxed) }
  public var evictedItems: Int { evictedCount.load(ordering: .relaxed) }

  @inline(__always)
  private func shard(for hash: CacheHash) -> Shard {
    shards[Int(hash.shardingBits % UInt64(shards.count))]
  }

  public func admit(_ key: CompactCacheKey, size weight: Int, freshUntil: CacheTime) -> [CompactCacheKey] {
    track(key.combinedHash, weight: weight)
    return evictToLimit()
  }

  public func incrementWeight(_ key: CompactCacheKey, delta: Int, maxWeight: Int?) -> [CompactCacheKey] {
    let hash = key.combinedHash
    let grown: Int? = shard(for: hash).list.withLock { list in
      guard let current = list.weight(of: hash) else { return nil }
      let target = maxWeight.map { min(current + delta, $0) } ?? current + delta
      _ = list.adjustWeight(hash, by: target - current)
      list.promote(hash)
      return target - current
    }
    if let grown {
      size.add(grown, ordering: .relaxed)
    } else {
      track(hash, weight: delta)
    }
    return evictToLimit()
  }

  public func remove(_ key: CompactCacheKey) {
    let hash = key.combinedHash
    if let weight = shard(for: hash).list.withLock({ $0.remove(hash) }) {
      size.subtract(weight, ordering: .relaxed)
      items.subtract(1, ordering: .relaxed)
    }
  }

  @discardableResult
  public func access(_ key: CompactCacheKey, size weight: Int, freshUntil: CacheTime) -> Bool {
    let hash = key.combinedHash
    let known = shard(for: hash).list.withLock { $0.promote(hash) }
    if !known { track(hash, weight: weight) }
    return known
  }

  public func peek(_ key: CompactCacheKey) -> Bool {
    let hash = key.combinedHash
    return shard(for: hash).list.withLock { $0.contains(hash) }
  }

  public func evict(atLeast bytes: Int) -> [CompactCacheKey] {
    var freed = 0
    var evicted: [CompactCacheKey] = []
    var emptyInARow = 0
    while freed < bytes && emptyInARow < shards.count {
      if let victim = popFromNextShard() {
        freed += victim.weight
        evicted.append(CompactCacheKey(combinedHash: victim.key))
        emptyInARow = 0
      } else {
        emptyInARow += 1
      }
    }
    return evicted
  }

  public func save(to directory: String) async throws(CacheError) {
    var entries: [EvictionStateFile.Entry] = []
    for shard in shards {
      entries += shard.list.withLock { $0.fromTail() }.map { EvictionStateFile.Entry(hash: $0.key, weight: $0.weight) }
    }
    try await EvictionStateFile(policy: Self.policyName, entries: entries).save(to: directory)
  }

  public func load(from directory: String) async throws(CacheError) {
    clear()
    guard let file = try await EvictionStateFile.load(from: directory, policy: Self.policyName) else { return }
    // Entries are least recent first, so inserting in order rebuilds each shard's order.
    for entry in file.entries { track(entry.hash, weight: entry.weight) }
    _ = evictToLimit()
  }

  /// Bytes of RAM used per tracked key (the lists' arrays and indexes over the keys).
  public var bytesPerKey: Double {
    let bytes = shards.reduce(0) { total, shard in total + shard.list.withLock { $0.approximateBytes } }
    let count = totalItems
    return count == 0 ? 0 : Double(bytes) / Double(count)
  }

  /// The bench's 67 bytes per key (list nodes and dictionary), rounded up.
  public var trackingBytesPerKey: Int { 72 }

  private func clear() {
    for shard in shards {
      let (weight, count) = shard.list.withLock { list in
        defer { list.removeAll() }
        return (list.weightTotal, list.count)
      }
      size.subtract(weight, ordering: .relaxed)
      items.subtract(count, ordering: .relaxed)
    }
  }

  private func track(_ hash: CacheHash, weight: Int) {
    let previous = shard(for: hash).list.withLock { $0.insertOrPromote(hash, weight: weight) }
    if let previous {
      size.add(weight - previous, ordering: .relaxed)
    } else {
      size.add(weight, ordering: .relaxed)
      items.add(1, ordering: .relaxed)
    }
  }

  private func evictToLimit() -> [CompactCacheKey] {
    var evicted: [CompactCacheKey] = []
    var emptyInARow = 0
    while size.load(ordering: .relaxed) > capacity && emptyInARow < shards.count {
      if let victim = popFromNextShard() {
        evicted.append(CompactCacheKey(combinedHash: victim.key))
        emptyInARow = 0
      } else {
        emptyInARow += 1
      }
    }
    return evicted
  }

  private func popFromNextShard() -> (key: CacheHash, weight: Int)? {
    let index = evictionCursor.add(1, ordering: .relaxed).newValue % shards.count
    guard let victim = shards[index].list.withLock({ $0.popTail() }) else { return nil }
    size.subtract(victim.weight, ordering: .relaxed)
    items.subtract(1, ordering: .relaxed)
    evictedBytes.add(victim.weight, ordering: .relaxed)
    evictedCount.add(1, ordering: .relaxed)
    return victim
  }
}
