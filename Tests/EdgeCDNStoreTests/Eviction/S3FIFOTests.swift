import Testing

@testable import EdgeCDNStore

@Suite("S3-FIFO and TinyUFO eviction managers")
struct S3FIFOTests {
  static func key(_ i: Int) -> CompactCacheKey { CacheKey(primary: "k\(i)").compact }
  static let never = CacheTime(millisecondsSinceEpoch: 0)
  static let admissionPolicies: [EvictionPolicy] = [.s3fifo, .tinyufo]

  /// A cache request: a hit accesses, a miss admits; returns whether it hit.
  @discardableResult
  static func request(_ key: CompactCacheKey, _ manager: any EvictionManager) -> Bool {
    if manager.peek(key) {
      manager.access(key, size: 100, freshUntil: never)
      return true
    }
    _ = manager.admit(key, size: 100, freshUntil: never)
    return false
  }

  @Test("a key reused in small moves to main; one never reused leaves first", arguments: admissionPolicies)
  func smallToMain(policy: EvictionPolicy) {
    let manager = policy.makeManager(capacity: 1000, shards: 1)
    // Fill with ten keys of 100 bytes; key 0 is reused once.
    for i in 0..<10 { #expect(manager.admit(Self.key(i), size: 100, freshUntil: Self.never).isEmpty) }
    #expect(manager.access(Self.key(0), size: 100, freshUntil: Self.never))
    let evicted = manager.admit(Self.key(10), size: 100, freshUntil: Self.never)
    // Key 0 was oldest in small but reused: it went to main, key 1 left.
    #expect(evicted == [Self.key(1)])
    #expect(manager.peek(Self.key(0)))
    #expect(manager.totalSize == 1000 && manager.totalItems == 10)
    #expect(manager.evictedItems == 1 && manager.evictedSize == 100)
  }

  @Test("S3-FIFO: a key evicted from small that returns goes to main (ghost hit)")
  func ghostHit() {
    let manager = S3FIFO(capacity: 1000, shardCount: 1)
    for i in 0..<10 { _ = manager.admit(Self.key(i), size: 100, freshUntil: Self.never) }
    #expect(manager.admit(Self.key(10), size: 100, freshUntil: Self.never) == [Self.key(0)])
    // Key 0 comes back: it skips small, so the next victims are small's keys 1, 2...
    let back = manager.admit(Self.key(0), size: 100, freshUntil: Self.never)
    #expect(back == [Self.key(1)])
    for i in 11..<20 {
      let evicted = manager.admit(Self.key(i), size: 100, freshUntil: Self.never)
      #expect(!evicted.contains(Self.key(0)), "key 0 was evicted at \(i)")
    }
    #expect(manager.peek(Self.key(0)))
  }

  @Test("one-hit wonders do not flush a hot set", arguments: admissionPolicies)
  func scanResistance(policy: EvictionPolicy) {
    let manager = policy.makeManager(capacity: 100 * 100, shards: 4)
    let hot = (0..<50).map { Self.key($0) }
    // Warm up: the hot set is requested a few times.
    for _ in 0..<3 {
      for key in hot { Self.request(key, manager) }
    }
    // A scan of 4000 keys never seen again, one hot request every two scanned keys:
    // a hot key comes back after 150 other keys, more than the cache holds (100).
    func replay(_ manager: any EvictionManager) -> Int {
      var hotMisses = 0
      for i in 0..<2000 {
        Self.request(Self.key(1000 + 2 * i), manager)
        Self.request(Self.key(1001 + 2 * i), manager)
        if !Self.request(hot[i % hot.count], manager) { hotMisses += 1 }
      }
      return hotMisses
    }
    let hotMisses = replay(manager)
    #expect(hotMisses < 20, "\(policy): \(hotMisses) misses on the hot set during the scan")
    #expect(manager.totalSize <= 100 * 100)
    let lru = EvictionPolicy.lru.makeManager(capacity: 100 * 100, shards: 4)
    for _ in 0..<3 {
      for key in hot { Self.request(key, lru) }
    }
    let lruMisses = replay(lru)
    #expect(hotMisses < lruMisses)
  }

  @Test("weights, removes and incrementWeight keep totals", arguments: admissionPolicies)
  func weights(policy: EvictionPolicy) {
    let manager = policy.makeManager(capacity: 1000, shards: 4)
    _ = manager.admit(Self.key(1), size: 100, freshUntil: Self.never)
    _ = manager.admit(Self.key(1), size: 250, freshUntil: Self.never)
    #expect(manager.totalSize == 250 && manager.totalItems == 1)
    _ = manager.incrementWeight(Self.key(1), delta: 50, maxWeight: 280)
    #expect(manager.totalSize == 280)
    manager.remove(Self.key(1))
    manager.remove(Self.key(1))
    #expect(manager.totalSize == 0 && manager.totalItems == 0)
    #expect(!manager.access(Self.key(9), size: 10, freshUntil: Self.never))
    #expect(manager.access(Self.key(9), size: 10, freshUntil: Self.never))
    #expect(manager.totalItems == 1)
    // Heavy remove/admit churn below the limit: dead queue slots are swept, totals hold.
    for round in 0..<50 {
      for i in 0..<20 { _ = manager.admit(Self.key(100 + i), size: 10 + round % 5, freshUntil: Self.never) }
      for i in 0..<20 { manager.remove(Self.key(100 + i)) }
    }
    #expect(manager.totalItems == 1 && manager.totalSize == 10)
    // A weight beyond 4 GiB is kept exactly.
    let big = policy.makeManager(capacity: Int.max, shards: 1)
    _ = big.admit(Self.key(1), size: 5 << 30, freshUntil: Self.never)
    #expect(big.totalSize == 5 << 30)
    #expect(big.evict(atLeast: 1) == [Self.key(1)])
    #expect(big.totalSize == 0)
  }

  @Test("access tracks unknown keys without evicting; evict(atLeast:) frees enough", arguments: admissionPolicies)
  func accessAndEvictAtLeast(policy: EvictionPolicy) {
    let manager = policy.makeManager(capacity: 100, shards: 2)
    for i in 0..<10 { manager.access(Self.key(i), size: 50, freshUntil: Self.never) }
    #expect(manager.totalItems == 10 && manager.evictedItems == 0)
    let evicted = manager.admit(Self.key(99), size: 50, freshUntil: Self.never)
    #expect(evicted.count >= 9 && manager.totalSize <= 100)
    #expect(manager.totalItems == 11 - evicted.count)

    let large = policy.makeManager(capacity: 10_000, shards: 8)
    for i in 0..<50 { _ = large.admit(Self.key(i), size: 100, freshUntil: Self.never) }
    #expect(large.evict(atLeast: 250).count == 3)
    #expect(large.totalSize == 4700)
    #expect(large.evict(atLeast: 1_000_000).count == 47)
    #expect(large.totalSize == 0 && large.totalItems == 0)
  }

  @Test("many tasks admitting and accessing keep totals consistent", arguments: admissionPolicies)
  func concurrent(policy: EvictionPolicy) async {
    let manager = policy.makeManager(capacity: 50_000, shards: 16)
    let evictedCounts = await withTaskGroup(of: Int.self) { group in
      for worker in 0..<8 {
        group.addTask {
          var evicted = 0
          for i in 0..<2000 {
            let k = (i * 7 + worker * 13) % 1500
            if i % 3 == 0 {
              manager.access(Self.key(k), size: 100, freshUntil: Self.never)
            } else if i % 17 == 0 {
              manager.remove(Self.key(k))
            } else {
              evicted += manager.admit(Self.key(k), size: 100, freshUntil: Self.never).count
            }
          }
          return evicted
        }
      }
      return await group.reduce(0, +)
    }
    #expect(manager.totalSize == manager.totalItems * 100)
    #expect(manager.totalSize <= 50_000)
    #expect(manager.evictedItems == evictedCounts)
    let remaining = manager.totalItems
    #expect(manager.evict(atLeast: Int.max).count == remaining)
    #expect(manager.totalItems == 0 && manager.totalSize == 0)
  }
}
