/// A cache storage tier: pingora_cache's `Storage`, in Swift.
///
/// The instance lives as long as the server and is shared by every request task.
/// Handler types are associated types so that generic callers (the bench, the
/// tiered store) call them without an existential box; callers that need one
/// (`any Storage`) still can.
///
/// Tracing: no span parameter. Implementations and wrappers start spans with
/// swift-distributed-tracing's `withSpan`, which reads the caller's task-local
/// `ServiceContext`, so they nest under the request's span on their own.
public protocol Storage: Sendable {
  associatedtype Hit: HitHandler
  associatedtype Miss: MissHandler

  /// The stored object for `key`, or nil for a miss. Errors are failures, not misses.
  func lookup(_ key: CacheKey) async throws(CacheError) -> CacheHit<Hit>?

  /// `lookup`, with the meta and the handler handed over as two values, for a store
  /// that wraps this one's handler in its own (the tiered store's RAM hit).
  ///
  /// Why: taking the handler out of a generic `CacheHit` is a copy (a retain of every
  /// buffer it holds, and a release of the original), which specialisation does not turn
  /// back into a move, while the elements of a returned tuple move. A store that builds
  /// its hit from these two parts implements this directly; the default splits `lookup`'s.
  func lookupParts(_ key: CacheKey) async throws(CacheError) -> (meta: CacheMeta, handler: Hit)?

  /// Like `lookup`, but with a tag returns only the object of that write (in
  /// progress or just finished), so a request reads the body it is writing itself.
  func lookupStreamingWrite(_ key: CacheKey, tag: StreamingWriteTag?) async throws(CacheError) -> CacheHit<Hit>?

  /// Begins writing an object. Nothing is visible to `lookup` before `finish()`,
  /// except to partial readers when `supportsStreamingPartialWrite` is true.
  func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Miss

  /// Removes the object; true when something was removed. Readers already reading
  /// continue to the end of the body they started.
  func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool

  /// Replaces the meta of a stored object (after a 304); false when it is not there.
  func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool

  /// Whether readers may read an object while it is being written.
  var supportsStreamingPartialWrite: Bool { get }

  /// How much of a write readers can follow chunk by chunk as it comes; past it they get
  /// it in coarser steps, or only once it commits (nil: no such limit). The tiered store's
  /// writes past RAM's maximum object size go on on disk alone, which readers follow a
  /// fragment at a time. A caller that must not wait that long (the proxy's leader of a
  /// larger fill) then takes the body from elsewhere.
  var streamingPartialWriteLimit: Int? { get }
}

extension Storage {
  public func lookupStreamingWrite(_ key: CacheKey, tag: StreamingWriteTag?) async throws(CacheError) -> CacheHit<Hit>?
  {
    try await lookup(key)
  }

  public var supportsStreamingPartialWrite: Bool { false }

  public var streamingPartialWriteLimit: Int? { nil }

  @inlinable
  public func lookupParts(_ key: CacheKey) async throws(CacheError) -> (meta: CacheMeta, handler: Hit)? {
    guard let hit = try await lookup(key) else { return nil }
    return (hit.meta, hit.handler)
  }
}

/// A lookup's result: the stored meta and a handler that reads the body.
public struct CacheHit<Handler: HitHandler>: Sendable {
  public var meta: CacheMeta
  public var handler: Handler

  public init(meta: CacheMeta, handler: Handler) {
    self.meta = meta
    self.handler = handler
  }
}

/// Why an object is purged: the eviction manager chose it, or an operator asked.
public enum PurgeReason: String, Hashable, Sendable {
  case eviction
  case invalidation
}

/// Names one write, so a request finds its own write among concurrent writers of a key.
public struct StreamingWriteTag: Hashable, Sendable, CustomStringConvertible {
  public var rawValue: UInt64
  public init(rawValue: UInt64) { self.rawValue = rawValue }
  public var description: String { "write#\(rawValue)" }
}
