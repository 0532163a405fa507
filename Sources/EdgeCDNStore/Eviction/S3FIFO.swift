/// S3-FIFO (Yang et al., SOSP 2023): new objects enter a small FIFO holding a tenth
/// of the bytes; those reused there move to a main FIFO with reinsertion, the others
/// leave at once and are remembered in a ghost queue, so a returning key goes to main.
///
/// Why it beats LRU on CDN traffic: most objects are requested once (one-hit wonders),
/// and the small queue drops them quickly instead of letting them push popular ones out;
/// hits only set a 2-bit counter under the shard lock, with no list to relink.
public final class S3FIFO: EvictionManager {
  public static let policyName = "s3fifo"
  private let engine: S3FIFOEngine

  /// - Parameters:
  ///   - capacity: the byte limit; admissions beyond it evict.
  ///   - shardCount: independent locks; more shards, less contention (default 16).
  public init(capacity: Int, shardCount: Int = 16) {
    engine = S3FIFOEngine(policyName: Self.policyName, capacity: capacity, shardCount: shardCount, admission: .ghost)
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
