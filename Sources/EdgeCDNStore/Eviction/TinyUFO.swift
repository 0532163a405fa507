/// S3-FIFO with TinyLFU admission into main, after Cloudflare's TinyUFO (pingora): a
/// count-min sketch with aging counts recent requests per key (hits and misses), and a
/// key coming back from the ghost queue enters main only if the sketch ranks it at
/// least as high as main's next victim; otherwise it starts over in the small queue.
///
/// Why a filter on the ghost: a ghost hit only says "seen once recently", which lets a
/// key requested twice displace one requested a hundred times; the sketch remembers
/// frequency over a window many times the cache. Measured alternatives (the sketch also
/// promoting unused keys out of small, or replacing the ghost as in pingora) missed more
/// on the Zipf workloads; see docs/performance.md.
public final class TinyUFO: EvictionManager {
  public static let policyName = "tinyufo"
  private let engine: S3FIFOEngine

  /// - Parameters:
  ///   - capacity: the byte limit; admissions beyond it evict.
  ///   - shardCount: independent locks; more shards, less contention (default 16).
  public init(capacity: Int, shardCount: Int = 16) {
    engine = S3FIFOEngine(policyName: Self.policyName, capacity: capacity, shardCount: shardCount, admission: .sketch)
  }

  /// The byte limit.
  public var capacity: Int { engine.capacity }
  public var totalSize: Int { engine.totalSize }
  public var totalItems: Int { engine.totalItems }
  public var evictedSize: Int { engine.evictedSize }
  public var evictedItems: Int { engine.evictedItems }

  public func admit(_ key: CompactCacheKey, size: Int, freshUntil: CacheTime) -> [CompactCacheKey] {
    engine.admit(key, size: size)
  }

  public func incrementWeight(_ key: CompactCacheKey, delta: Int, maxWeight: Int?) -> [CompactCacheKey] {
    engine.incrementWeight(key, delta: delta, maxWeight: maxWeight)
  }

  public func remove(_ key: CompactCacheKey) { engine.remove(key) }

  @discardableResult
  public func access(_ key: CompactCacheKey, size: Int, freshUntil: CacheTime) -> Bool {
    engine.access(key, size: size)
  }

  public func peek(_ key: CompactCacheKey) -> Bool { engine.peek(key) }

  public func evict(atLeast bytes: Int) -> [CompactCacheKey] { engine.evict(atLeast: bytes) }

  public func save(to directory: String) async throws(CacheError) { try await engine.save(to: directory) }

  public func load(from directory: String) async throws(CacheError) { try await engine.load(from: directory) }

  /// Bytes of RAM per tracked key, from the structures' capacities.
  public var bytesPerKey: Double { engine.bytesPerKey }
}
