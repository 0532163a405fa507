import Testing

@testable import EdgeCDNStore

@Suite("Eviction policy choice and miss ratios")
struct EvictionPolicyTests {
  @Test("policy names parse case-insensitively; an unknown one names the setting and choices")
  func parsing() throws {
    #expect(try EvictionPolicy(parsing: "S3FIFO") == .s3fifo)
    #expect(try EvictionPolicy(parsing: "tinyufo") == .tinyufo)
    #expect(try EvictionPolicy(parsing: "lru") == .lru)
    #expect(throws: ConfigurationError.self) { try EvictionPolicy(parsing: "arc") }
    do {
      _ = try EvictionPolicy(parsing: "arc", setting: "memory.evictionPolicy")
    } catch {
      #expect(error.description == "invalid memory.evictionPolicy = \"arc\": allowed lru, s3fifo, tinyufo")
    }
  }

  @Test("the memory store uses the configured policy")
  func configuredStore() async throws {
    let store = try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: 1 << 20, maxObjectSize: 1 << 16, evictionPolicy: .s3fifo))
    #expect(store.evictionManager is S3FIFO)
    let tinyufoStore = try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: 1 << 20, maxObjectSize: 1 << 16, evictionPolicy: .tinyufo))
    #expect(tinyufoStore.evictionManager is TinyUFO)
    let lruStore = try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: 1 << 20, maxObjectSize: 1 << 16, evictionPolicy: .lru))
    #expect(lruStore.evictionManager is ShardedLRU)
    // S3-FIFO is the default: it missed less than LRU on every workload measured.
    let defaultStore = try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: 1 << 20, maxObjectSize: 1 << 16))
    #expect(defaultStore.evictionManager is S3FIFO)
  }

  /// A seeded Zipf(1.0) stream over 2000 objects of 100 to 1000 bytes, with 30% of
  /// requests for one-hit wonders.
  static func trace(requests: Int, seed: UInt64) -> [(key: CompactCacheKey, size: Int)] {
    var state = seed
    func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    func unit() -> Double { Double(next() >> 11) / 9_007_199_254_740_992.0 }
    let objects = 2000
    var cumulative = [Double]()
    var total = 0.0
    for rank in 1...objects {
      total += 1.0 / Double(rank)
      cumulative.append(total)
    }
    func key(_ n: Int) -> CompactCacheKey {
      CompactCacheKey(
        combinedHash: CacheHash(high: UInt64(n) &* 0x9E37_79B9_7F4A_7C15, low: UInt64(n) &* 0xBF58_476D_1CE4_E5B9))
    }
    var out: [(key: CompactCacheKey, size: Int)] = []
    var oneHit = objects
    for _ in 0..<requests {
      if unit() < 0.3 {
        oneHit += 1
        out.append((key(oneHit), 100 + oneHit * 37 % 900))
      } else {
        let target = unit() * total
        let rank = cumulative.partitionIndex { $0 >= target }
        out.append((key(rank), 100 + rank * 37 % 900))
      }
    }
    return out
  }

  static func missRatios(
    _ policy: EvictionPolicy, trace: [(key: CompactCacheKey, size: Int)], capacity: Int
  )
    -> (objects: Double, bytes: Double)
  {
    let never = CacheTime(millisecondsSinceEpoch: 0)
    let manager = policy.makeManager(capacity: capacity, shards: 4)
    var misses = 0
    var missBytes = 0
    var bytes = 0
    for request in trace {
      bytes += request.size
      if manager.peek(request.key) {
        manager.access(request.key, size: request.size, freshUntil: never)
      } else {
        misses += 1
        missBytes += request.size
        _ = manager.admit(request.key, size: request.size, freshUntil: never)
      }
      #expect(manager.totalSize <= capacity)
    }
    return (Double(misses) / Double(trace.count), Double(missBytes) / Double(bytes))
  }

  @Test("on a small generated CDN-like trace, S3-FIFO and TinyUFO miss less than LRU")
  func beatsLRU() {
    let trace = Self.trace(requests: 20_000, seed: 7)
    let capacity = 100 * 550
    let lru = Self.missRatios(.lru, trace: trace, capacity: capacity)
    for policy in [EvictionPolicy.s3fifo, .tinyufo] {
      let ratios = Self.missRatios(policy, trace: trace, capacity: capacity)
      #expect(ratios.objects < lru.objects, "\(policy) object miss \(ratios.objects) vs lru \(lru.objects)")
      #expect(ratios.bytes < lru.bytes, "\(policy) byte miss \(ratios.bytes) vs lru \(lru.bytes)")
    }
  }
}

extension Array {
  /// The first index whose element satisfies `predicate`, for a predicate false then true.
  fileprivate func partitionIndex(where predicate: (Element) -> Bool) -> Int {
    var low = 0
    var high = count - 1
    while low < high {
      let middle = (low + high) / 2
      if predicate(self[middle]) { high = middle } else { low = middle + 1 }
    }
    return low
  }
}
