import TestSupport
import Testing

@testable import EdgeCDNStore

@Suite("Sharded LRU eviction manager")
struct ShardedLRUTests {
  static func key(_ i: Int) -> CompactCacheKey { CacheKey(primary: "k\(i)").compact }
  static let never = CacheTime(millisecondsSinceEpoch: 0)

  @Test("evicts least recently used first, within one shard exactly")
  func lruOrder() {
    let lru = ShardedLRU(capacity: 300, shardCount: 1)
    #expect(lru.admit(Self.key(1), size: 100, freshUntil: Self.never).isEmpty)
    #expect(lru.admit(Self.key(2), size: 100, freshUntil: Self.never).isEmpty)
    #expect(lru.admit(Self.key(3), size: 100, freshUntil: Self.never).isEmpty)
    lru.access(Self.key(1), size: 100, freshUntil: Self.never)
    let evicted = lru.admit(Self.key(4), size: 100, freshUntil: Self.never)
    #expect(evicted == [Self.key(2)])
    #expect(lru.totalSize == 300)
    #expect(lru.totalItems == 3)
    #expect(lru.evictedSize == 100)
    #expect(lru.evictedItems == 1)
    #expect(lru.peek(Self.key(1)) && !lru.peek(Self.key(2)))
  }

  @Test("admit of a tracked key updates its weight; remove and incrementWeight keep totals")
  func weights() {
    let lru = ShardedLRU(capacity: 1000, shardCount: 4)
    _ = lru.admit(Self.key(1), size: 100, freshUntil: Self.never)
    _ = lru.admit(Self.key(1), size: 250, freshUntil: Self.never)
    #expect(lru.totalSize == 250 && lru.totalItems == 1)
    _ = lru.incrementWeight(Self.key(1), delta: 50, maxWeight: 280)
    #expect(lru.totalSize == 280)
    lru.remove(Self.key(1))
    lru.remove(Self.key(1))
    #expect(lru.totalSize == 0 && lru.totalItems == 0)
    #expect(!lru.access(Self.key(9), size: 10, freshUntil: Self.never))
    #expect(lru.access(Self.key(9), size: 10, freshUntil: Self.never))
    #expect(lru.totalItems == 1)
  }

  @Test("access tracks unknown keys without evicting")
  func accessDoesNotEvict() {
    let lru = ShardedLRU(capacity: 100, shardCount: 2)
    for i in 0..<10 { lru.access(Self.key(i), size: 50, freshUntil: Self.never) }
    #expect(lru.totalItems == 10 && lru.evictedItems == 0)
    let evicted = lru.admit(Self.key(99), size: 50, freshUntil: Self.never)
    #expect(evicted.count == 9)
    #expect(lru.totalSize <= 100)
  }

  @Test("evict(atLeast:) frees at least that much, or everything")
  func evictAtLeast() {
    let lru = ShardedLRU(capacity: 10_000, shardCount: 8)
    for i in 0..<50 { _ = lru.admit(Self.key(i), size: 100, freshUntil: Self.never) }
    #expect(lru.evict(atLeast: 250).count == 3)
    #expect(lru.totalSize == 4700)
    #expect(lru.evict(atLeast: 1_000_000).count == 47)
    #expect(lru.totalSize == 0 && lru.totalItems == 0)
  }

  @Test("many tasks admitting and accessing keep totals consistent")
  func concurrent() async {
    let lru = ShardedLRU(capacity: 50_000, shardCount: 16)
    let evictedCounts = await withTaskGroup(of: Int.self) { group in
      for worker in 0..<8 {
        group.addTask {
          var evicted = 0
          for i in 0..<2000 {
            let k = (i * 7 + worker * 13) % 1500
            if i % 3 == 0 {
              lru.access(Self.key(k), size: 100, freshUntil: Self.never)
            } else {
              evicted += lru.admit(Self.key(k), size: 100, freshUntil: Self.never).count
            }
          }
          return evicted
        }
      }
      return await group.reduce(0, +)
    }
    #expect(lru.totalSize == lru.totalItems * 100)
    #expect(lru.totalSize <= 50_000)
    #expect(lru.evictedItems == evictedCounts)
  }

  @Test("save then load keeps keys, weights and recency")
  func saveLoad() async throws {
    let directory = try TemporaryDirectory()
    let lru = ShardedLRU(capacity: 1000, shardCount: 1)
    for i in 0..<5 { _ = lru.admit(Self.key(i), size: 100, freshUntil: Self.never) }
    lru.access(Self.key(0), size: 100, freshUntil: Self.never)
    try await lru.save(to: directory.path)
    let restored = ShardedLRU(capacity: 1000, shardCount: 1)
    try await restored.load(from: directory.path)
    #expect(restored.totalItems == 5 && restored.totalSize == 500)
    // Key 1 is now the least recent: it leaves first.
    #expect(restored.evict(atLeast: 1) == [Self.key(1)])
  }

  @Test("a corrupt, truncated or foreign state file throws and leaves the manager empty")
  func corruptState() async throws {
    let directory = try TemporaryDirectory()
    let lru = ShardedLRU(capacity: 1000)
    for i in 0..<5 { _ = lru.admit(Self.key(i), size: 100, freshUntil: Self.never) }
    try await lru.save(to: directory.path)
    let path = directory.path + "/" + EvictionStateFile.fileName
    let good = try #require(try DurableFile.readAll(path: path))

    var flipped = good
    flipped[good.count / 2] ^= 0x40
    let foreign = EvictionStateFile(policy: "s3fifo", entries: []).encoded()
    for bad in [Array(good.prefix(good.count - 3)), flipped, foreign, [UInt8](repeating: 7, count: 100)] {
      try DurableFile.replace(path: path, with: bad)
      let restored = ShardedLRU(capacity: 1000)
      _ = restored.admit(Self.key(100), size: 10, freshUntil: Self.never)
      await #expect(throws: CacheError.self) { try await restored.load(from: directory.path) }
      #expect(restored.totalItems == 0 && restored.totalSize == 0)
    }
    // No file at all: an empty manager and no error.
    let empty = try TemporaryDirectory()
    let fresh = ShardedLRU(capacity: 1000)
    try await fresh.load(from: empty.path)
    #expect(fresh.totalItems == 0)
  }
}
