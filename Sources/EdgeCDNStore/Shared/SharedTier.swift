public import NIOCore

/// A store shared by several edge servers (Redis or Valkey, memcached, an S3-like
/// object store, a peer edge server), below the local RAM and disk tiers.
///
/// Why this shape: every candidate can answer "what is stored under this key, which
/// version" cheaply (a GET of a small meta item, a HEAD, an HTTP HEAD), and can move a
/// body in chunks (GETRANGE, chunk items, ranged GET, a streamed response), so the
/// protocol asks for exactly those. A body is pulled chunk by chunk, never buffered
/// whole, and a body read names the version its meta came from, so a reader never
/// joins the meta of one write with the body of another. docs/proposal.md section 10
/// says how each backend maps onto it.
///
/// Implementations need not handle timeouts, retries or circuit breaking:
/// `SharedTierClient` wraps every call with those.
public protocol SharedTier: Sendable {
  /// A short name for logs, metrics and health ("redis", "peer-eu-1").
  var name: String { get }

  /// The stored meta and version of `key`, or nil when the tier has no such object.
  func fetchMeta(_ key: CacheKey) async throws(CacheError) -> SharedObjectHead?

  /// Streams the body of the version `head` describes; nil when that version is gone
  /// (replaced or deleted since `fetchMeta`).
  func streamBody(_ key: CacheKey, head: SharedObjectHead) async throws(CacheError) -> (any SharedBodyStream)?

  /// Stores an object, pulling its body from `body` until it returns nil. The new
  /// version becomes visible only once the whole body is stored.
  func store(_ key: CacheKey, meta: CacheMeta, body: any SharedBodyStream) async throws(CacheError)

  /// Removes every version of the object; true when something was removed.
  func delete(_ key: CompactCacheKey) async throws(CacheError) -> Bool

  /// Replaces the meta of a stored object (after a 304); false when it is not there.
  func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool

  /// Whether the tier answers now, as one health entry.
  func health() async -> TierHealth
}

/// What `SharedTier.fetchMeta` finds: enough to start a response before the body.
public struct SharedObjectHead: Sendable, Hashable {
  public var meta: CacheMeta
  /// The body's size in bytes, when the tier knows it (used to skip RAM for large objects).
  public var bodySize: Int?
  /// Names one stored write (a random id, an ETag, a generation); opaque to the caller.
  public var version: String

  public init(meta: CacheMeta, bodySize: Int?, version: String) {
    self.meta = meta
    self.bodySize = bodySize
    self.version = version
  }
}

/// A body pulled chunk by chunk, in either direction (from a shared tier to a reader,
/// or from a local tier to a shared tier's `store`). One task pulls at a time.
public protocol SharedBodyStream: Sendable {
  /// The next chunk, or nil at the end of the body.
  func next() async throws(CacheError) -> ByteBuffer?

  /// Stops early and releases what the stream holds (a connection, a file).
  func cancel() async
}
