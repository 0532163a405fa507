/// S3-FIFO's queues with TinyLFU admission, after Cloudflare's TinyUFO (pingora): a
/// count-min sketch with aging counts recent requests per key, and a key that was not
/// reused in the small queue still enters main if the sketch ranks it above main's next
/// victim; a key the sketch has seen before may skip small the same way.
///
/// Why a sketch instead of a ghost queue: it remembers frequency, not only recency, over
/// a window ten times the cache, so a popular key that was evicted comes back into main
/// and a burst of new keys cannot displace keys with a history of requests.
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
