import Synchronization

/// The sharded machinery behind `S3FIFO` and `TinyUFO`: each shard runs the policy on
/// its own keys behind its own lock, and byte totals are atomics, so the access path
/// takes one shard lock and no global one.
///
/// As in `ShardedLRU`, the byte limit is global: when the total is over it, shards
/// evict one key in turn. The small queue's tenth is global too: when all shards'
/// small queues together hold more than a tenth of the limit, the shards in turn evict
/// from their small queue, else from main. A per-shard tenth would be 1/16 of that
/// with 16 shards and would throw out every large object before its second request
/// (measured: byte miss ratio worse than LRU on heavy-tailed sizes).
final class S3FIFOEngine: Sendable {
  let policyName: String
  let capacity: Int
  /// In place (`PaddedTable`): a hit reaches its shard without a retain.
  private let shards: PaddedTable<Shard>
  private let size = Atomic<Int>(0)
  private let items = Atomic<Int>(0)
  private let evictedBytes = Atomic<Int>(0)
  private let evictedCount = Atomic<Int>(0)
  private let evictionCursor = Atomic<Int>(0)

  private struct Shard: ~Copyable, Sendable {
    let state: Mutex<S3FIFOShard>
    /// The bytes in the shard's small queue, published after each change so eviction
    /// can tell whether the cache-wide small queue is over its tenth without locking.
    let smallWeight = Atomic<Int>(0)
    init(_ shard: S3FIFOShard) { state = Mutex(shard) }

    /// Runs `body` under the lock and publishes the new weight.
    @inline(__always)
    func update<T>(_ body: (inout S3FIFOShard) -> T) -> T {
      state.withLock { state in
        let result = body(&state)
        smallWeight.store(state.smallWeight, ordering: .relaxed)
        return result
      }
    }
  }

  init(policyName: String, capacity: Int, shardCount: Int, admission: S3FIFOShard.Admission) {
    precondition(capacity >= 0 && shardCount > 0, "\(policyName) needs capacity >= 0 and shardCount > 0")
    self.policyName = policyName
    self.capacity = capacity
    self.shards = PaddedTable(count: shardCount) { _ in Shard(S3FIFOShard(admission: admission)) }
  }

  var totalSize: Int { size.load(ordering: .relaxed) }
  var totalItems: Int { items.load(ordering: .relaxed) }
  var evictedSize: Int { evictedBytes.load(ordering: .relaxed) }
  var evictedItems: Int { evictedCount.load(ordering: .relaxed) }

  @inline(__always)
  private func shard(for hash: CacheHash) -> UnsafeMutablePointer<Shard> {
    shards.pointer(shardIndex(for: hash))
  }

  @inline(__always)
  private func shardIndex(for hash: CacheHash) -> Int { Int(hash.shardingBits % UInt64(shards.count)) }

  func admit(_ key: CompactCacheKey, size weight: Int) -> [CompactCacheKey] {
    track(key.combinedHash, weight: weight, counted: false)
    return evictToLimit()
  }

  func incrementWeight(_ key: CompactCacheKey, delta: Int, maxWeight: Int?) -> [CompactCacheKey] {
    let hash = key.combinedHash
    if let grown = shard(for: hash).pointee.update({ $0.grow(hash, by: delta, maxWeight: maxWeight) }) {
      size.add(grown, ordering: .relaxed)
    } else {
      track(hash, weight: delta, counted: false)
    }
    return evictToLimit()
  }

  func remove(_ key: CompactCacheKey) {
    let hash = key.combinedHash
    if let weight = shard(for: hash).pointee.update({ $0.remove(hash) }) {
      size.subtract(max(0, weight), ordering: .relaxed)
      items.subtract(1, ordering: .relaxed)
    }
  }

  func access(_ key: CompactCacheKey, size weight: Int) -> Bool {
    let hash = key.combinedHash
    // The hit path: the shard read in place (not copied out of the array, a retain), and
    // no weight to publish (an access moves no bytes between the queues).
    let known = shard(for: hash).pointee.state.withLock { $0.access(hash) }
    if !known { track(hash, weight: weight, counted: true) }
    return known
  }

  func peek(_ key: CompactCacheKey) -> Bool {
    let hash = key.combinedHash
    return shard(for: hash).pointee.state.withLock { $0.contains(hash) }
  }

  func evict(atLeast bytes: Int) -> [CompactCacheKey] {
    var freed = 0
    var evicted: [CompactCacheKey] = []
    while freed < bytes, let victim = evictFromNextShard() {
      freed += victim.weight
      evicted.append(CompactCacheKey(combinedHash: victim.hash))
    }
    return evicted
  }

  func save(to directory: String) async throws(CacheError) {
    var entries: [EvictionStateFile.Entry] = []
    for index in 0..<shards.count { entries += shards.pointer(index).pointee.state.withLock { $0.savedEntries() } }
    try await EvictionStateFile(policy: policyName, entries: entries).save(to: directory)
  }

  func load(from directory: String) async throws(CacheError) {
    clear()
    guard let file = try await EvictionStateFile.load(from: directory, policy: policyName) else { return }
    for entry in file.entries {
      let added = shard(for: entry.hash).pointee.update { $0.restore(entry) }
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
    var bytes = 0
    for index in 0..<shards.count { bytes += shards.pointer(index).pointee.state.withLock { $0.approximateBytes } }
    let count = totalItems
    return count == 0 ? 0 : Double(bytes) / Double(count)
  }

  private func clear() {
    for index in 0..<shards.count {
      let (weight, count) = shards.pointer(index).pointee.update { state in
        defer { state = S3FIFOShard(admission: state.admission) }
        return (state.weightTotal, state.count)
      }
      size.subtract(weight, ordering: .relaxed)
      items.subtract(count, ordering: .relaxed)
    }
  }

  private func track(_ hash: CacheHash, weight: Int, counted: Bool) {
    let previous = shard(for: hash).pointee.update { $0.insert(hash, weight: weight, counted: counted) }
    if let previous {
      size.add(max(0, weight) - previous, ordering: .relaxed)
    } else {
      size.add(max(0, weight), ordering: .relaxed)
      items.add(1, ordering: .relaxed)
    }
  }

  private func evictToLimit() -> [CompactCacheKey] {
    var evicted: [CompactCacheKey] = []
    while size.load(ordering: .relaxed) > capacity, let victim = evictFromNextShard() {
      evicted.append(CompactCacheKey(combinedHash: victim.hash))
    }
    return evicted
  }

  /// Evicts one key, starting from the next shard in turn; nil when all are empty.
  private func evictFromNextShard() -> (hash: CacheHash, weight: Int)? {
    var smallBytes = 0
    for index in 0..<shards.count { smallBytes += shards.pointer(index).pointee.smallWeight.load(ordering: .relaxed) }
    let fromSmall = smallBytes > capacity / 10
    let start = evictionCursor.add(1, ordering: .relaxed).newValue
    // First pass: only a shard with keys in the wanted queue; second: any shard.
    for pass in 0..<2 {
      for offset in 0..<shards.count {
        let shard = shards.pointer((start + offset) % shards.count)
        guard let victim = shard.pointee.update({ $0.evictOne(fromSmall: fromSmall, strict: pass == 0) }) else {
          continue
        }
        size.subtract(victim.weight, ordering: .relaxed)
        items.subtract(1, ordering: .relaxed)
        evictedBytes.add(victim.weight, ordering: .relaxed)
        evictedCount.add(1, ordering: .relaxed)
        return victim
      }
    }
    return nil
  }
}
