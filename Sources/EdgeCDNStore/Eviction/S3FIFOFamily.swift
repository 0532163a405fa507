/// The `EvictionManager` face shared by S3-FIFO and TinyUFO: both are `S3FIFOEngine`,
/// differing only in how a key returning from the ghost queue is admitted into main.
/// One forwarding layer here instead of one per policy; the subclasses name the policy
/// and pick the admission rule.
///
/// `@unchecked Sendable`: the class is not final (the two policies subclass it), which
/// Swift cannot check; its only state is the immutable reference to a Sendable engine.
public class S3FIFOFamily: EvictionManager, @unchecked Sendable {
  let engine: S3FIFOEngine

  init(engine: S3FIFOEngine) {
    self.engine = engine
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

  /// The bench's 43 to 48 bytes per key (S3-FIFO; TinyUFO's sketch adds a few), rounded up.
  public var trackingBytesPerKey: Int { 48 }
}
