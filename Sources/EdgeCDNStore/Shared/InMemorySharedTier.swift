import NIOCore
import Synchronization

/// A SharedTier kept in this process: the reference implementation of the protocol,
/// used by tests and benchmarks. Bodies are stored as the chunks they came in; a
/// store becomes visible only after its body ended, under a new version.
public final class InMemorySharedTier: SharedTier {
  struct Object: Sendable {
    var meta: CacheMeta
    var chunks: [ByteBuffer]
    var size: Int
    var version: String
  }

  public let name: String
  private let objects = Mutex<[CompactCacheKey: Object]>([:])
  private let versions = Atomic<UInt64>(0)

  public init(name: String = "in-memory") {
    self.name = name
  }

  /// Objects stored now.
  public var objectCount: Int { objects.withLock { $0.count } }

  /// Whether `key` is stored now (for tests).
  public func contains(_ key: CacheKey) -> Bool { objects.withLock { $0[key.compact] != nil } }

  public func fetchMeta(_ key: CacheKey) async throws(CacheError) -> SharedObjectHead? {
    objects.withLock { $0[key.compact] }.map { SharedObjectHead(meta: $0.meta, bodySize: $0.size, version: $0.version) }
  }

  public func streamBody(_ key: CacheKey, head: SharedObjectHead) async throws(CacheError) -> (any SharedBodyStream)? {
    guard let object = objects.withLock({ $0[key.compact] }), object.version == head.version else { return nil }
    return ChunkListStream(chunks: object.chunks)
  }

  public func store(_ key: CacheKey, meta: CacheMeta, body: any SharedBodyStream) async throws(CacheError) {
    var chunks: [ByteBuffer] = []
    var size = 0
    while let chunk = try await body.next() {
      size += chunk.readableBytes
      chunks.append(chunk)
    }
    let version = "v\(versions.add(1, ordering: .relaxed).newValue)"
    let object = Object(meta: meta, chunks: chunks, size: size, version: version)
    objects.withLock { $0[key.compact] = object }
  }

  public func delete(_ key: CompactCacheKey) async throws(CacheError) -> Bool {
    objects.withLock { $0.removeValue(forKey: key) } != nil
  }

  public func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    objects.withLock { objects in
      guard objects[key.compact] != nil else { return false }
      objects[key.compact]?.meta = meta
      return true
    }
  }

  public func health() async -> TierHealth { TierHealth(tier: name, status: .ok) }
}

/// Hands out a stored chunk list one chunk at a time (the chunks share storage).
final class ChunkListStream: SharedBodyStream {
  private let state: Mutex<(chunks: [ByteBuffer], index: Int)>

  init(chunks: [ByteBuffer]) {
    state = Mutex((chunks, 0))
  }

  func next() async throws(CacheError) -> ByteBuffer? {
    state.withLock { state in
      guard state.index < state.chunks.count else { return nil }
      defer { state.index += 1 }
      return state.chunks[state.index]
    }
  }

  func cancel() async {
    state.withLock { $0.index = $0.chunks.count }
  }
}
