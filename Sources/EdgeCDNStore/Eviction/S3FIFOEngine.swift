import Synchronization

/// The sharded machinery behind `S3FIFO` and `TinyUFO`: each shard runs the policy on
/// its own keys behind its own lock, and byte totals are atomics, so the access path
/// takes one shard lock and no global one.
///
/// As in `ShardedLRU`, the byte limit is global: when the total is over it, shards
/// evict one key in turn. Each shard's small queue is a tenth of its share of the
/// limit. With uniform hashes the shards fill alike, so this approximates one queue.
final class S3FIFOEngine: Sendable {
  let policyName: String
  let capacity: Int
  private let shards: [Shard]
  private let size = Atomic<Int>(0)
  private let items = Atomic<Int>(0)
  private let evictedBytes = Atomic<Int>(0)
  private let evictedCount = Atomic<Int>(0)
  private let evictionCursor = Atomic<Int>(0)

  private let share: Int

  private final class Shard: Sendable {
    let state: Mutex<S3FIFOShard>
    /// The shard's bytes, published after each change so eviction can pick a shard
    /// over its share without taking every lock.
    let weight = Atomic<Int>(0)
    init(_ shard: S3FIFOShard) { state = Mutex(shard) }

    /// Runs `body` under the lock and publishes the new weight.
    @inline(__always)
    func update<T>(_ body: (inout S3FIFOShard) -> T) -> T {
      state.withLock { state in
        let result = body(&state)
        weight.store(state.weightTotal, ordering: .relaxed)
        return result
      }
    }
  }

  init(policyName: String, capacity: Int, shardCount: Int, admission: S3FIFOShard.Admission) {
    precondition(capacity >= 0 && shardCount > 0, "\(policyName) needs capacity >= 0 and shardCount > 0")
    self.policyName = policyName
    self.capacity = capacity
    let share = max(1, capacity / shardCount)
    self.share = share
    self.shards = (0..<shardCount).map { _ in Shard(S3FIFOShard(limit: share, admission: admission)) }
  }

  var totalSize: Int { size.load(ordering: .relaxed) }
  var totalItems: Int { items.load(ordering: .relaxed) }
  var evictedSize: Int { evictedBytes.load(ordering: .relaxed) }
  var evictedItems: Int { evictedCount.load(ordering: .relaxed) }

  @inline(__always)
  private func shard(for hash: CacheHash) -> Shard {
    shards[Int(hash.shardingBits % UInt64(shards.count))]
  }

  func admit(_ key: CompactCacheKey, size weight: Int) -> [CompactCacheKey] {
    track(key.combinedHash, weight: weight, counted: false)
    return evictToLimit()
  }

  func incrementWeight(_ key: CompactCacheKey, delta: Int, maxWeight: Int?) -> [CompactCacheKey] {
    let hash = key.combinedHash
    if let grown = shard(for: hash).update({ $0.grow(hash, by: delta, maxWeight: maxWeight) }) {
      size.add(grown, ordering: .relaxed)
    } else {
      track(hash, weight: delta, counted: false)
    }
    return evictToLimit()
  }

  func remove(_ key: CompactCacheKey) {
    let hash = key.combinedHash
    if let weight = shard(for: hash).update({ $0.remove(hash) }) {
      size.subtract(max(0, weight), ordering: .relaxed)
      items.subtract(1, ordering: .relaxed)
    }
  }

  func access(_ key: CompactCacheKey, size weight: Int) -> Bool {
    let hash = key.combinedHash
    let known = shard(for: hash).update { $0.access(hash) }
    if !known { track(hash, weight: weight, counted: true) }
    return known
  }

  func peek(_ key: CompactCacheKey) -> Bool {
    let hash = key.combinedHash
    return shard(for: hash).state.withLock { $0.contains(hash) }
  }

  func evict(atLeast bytes: Int) -> [CompactCacheKey] {
    var freed = 0
    var evicted: [CompactCacheKey] = []
    var emptyInARow = 0
    while freed < bytes && emptyInARow < shards.count {
      if let victim = evictFromNextShard() {
        freed += victim.weight
        evicted.append(CompactCacheKey(combinedHash: victim.hash))
        emptyInARow = 0
      } else {
        emptyInARow += 1
      }
    }
    return evicted
  }

  func save(to directory: String) async throws(CacheError) {
    var entries: [EvictionStateFile.Entry] = []
    for shard in shards { entries += shard.state.withLock { $0.savedEntries() } }
    try await EvictionStateFile(policy: policyName, entries: entries).save(to: directory)
  }

  func load(from directory: String) async throws(CacheError) {
    clear()
    guard let file = try await EvictionStateFile.load(from: directory, policy: policyName) else { return }
    for entry in file.entries {
      let added = shard(for: entry.hash).update { $0.restore(entry) }
      if added {
        size.add(entry.weight, ordering: .relaxed)
        items.add(1, ordering: .relaxed)
      }
    }
    _ = evictToLimit()
  }

  /// Bytes of RAM per tracked key from the shards' array capacities (slab, index,
  /// queues, ghost or sketch); the eviction bench also measures it with malloc.
  var bytesPerKey: Double {
    let bytes = shards.reduce(0) { total, shard in total + shard.state.withLock { $0.approximateBytes } }
    let count = totalItems
    return count == 0 ? 0 : Double(bytes) / Double(count)
  }

  private func clear() {
    for shard in shards {
      let (weight, count) = shard.update { state in
        defer { state = S3FIFOShard(limit: state.limit, admission: state.admission) }
        return (state.weightTotal, state.count)
      }
      size.subtract(weight, ordering: .relaxed)
      items.subtract(count, ordering: .relaxed)
    }
  }

  private func track(_ hash: CacheHash, weight: Int, counted: Bool) {
    let previous = shard(for: hash).update { $0.insert(hash, weight: weight, counted: counted) }
    if let previous {
      size.add(max(0, weight) - previous, ordering: .relaxed)
    } else {
      size.add(max(0, weight), ordering: .relaxed)
      items.add(1, ordering: .relaxed)
    }
  }

  private func evictToLimit() -> [CompactCacheKey] {
    var evicted: [CompactCacheKey] = []
    var emptyInARow = 0
    while size.load(ordering: .relaxed) > capacity && emptyInARow < shards.count {
      if let victim = evictFromNextShard() {
        evicted.append(CompactCacheKey(combinedHash: victim.hash))
        emptyInARow = 0
      } else {
        emptyInARow += 1
      }
    }
    return evicted
  }

  private func evictFromNextShard() -> (hash: CacheHash, weight: Int)? {
    // Prefer a shard over its share of the limit, so a shard whose small queue is
    // full does not make a balanced one give up main's keys; round robin otherwise.
    let start = evictionCursor.add(1, ordering: .relaxed).newValue
    var index = start % shards.count
    for offset in 0..<shards.count {
      let candidate = (start + offset) % shards.count
      if shards[candidate].weight.load(ordering: .relaxed) > share {
        index = candidate
        break
      }
    }
    guard let victim = shards[index].update({ $0.evictOne() }) else { return nil }
    size.subtract(victim.weight, ordering: .relaxed)
    items.subtract(1, ordering: .relaxed)
    evictedBytes.add(victim.weight, ordering: .relaxed)
    evictedCount.add(1, ordering: .relaxed)
    return victim
  }
}
