import CoreMetrics
import EdgeCDNStore
import MetricsTestKit
import NIOCore
import Synchronization
import Testing
import Tracing

/// `ImmediateLookup` on RAM, instrumented and tiered: answers only complete RAM objects
/// within the size limit, counts exactly as a lookup plus a whole read, declines for free.
@Suite("ImmediateLookup: RAM, instrumented, tiered")
struct ImmediateLookupTests {
  static let tier = [("tier", "memory")]

  static func meta(freshFor seconds: Int64 = 60) -> CacheMeta {
    let now = CacheTime.now()
    return CacheMeta(freshUntil: now.adding(seconds: seconds), created: now, response: .init(status: 200))
  }

  static func put<S: Storage>(_ store: S, _ key: CacheKey, _ chunks: [Int], meta: CacheMeta = meta()) async throws {
    let writer = try await store.missHandler(for: key, meta: meta)
    for (index, size) in chunks.enumerated() {
      try await writer.writeBody(ByteBuffer(repeating: UInt8(index), count: size), eof: false)
    }
    try await writer.writeBody(ByteBuffer(), eof: true)
    _ = try await writer.finish()
  }

  @Test("a complete object comes back whole; the size limit, accept and writes in progress decline")
  func memoryStore() async throws {
    let manager = CountingEvictionManager(base: EvictionPolicy.lru.makeManager(capacity: 1 << 20))
    let store = try MemoryStore(evictionManager: manager)
    let key = CacheKey(primary: "/a")
    #expect(store.immediateLookup(key, maxBodyBytes: 1 << 20, readsBody: true) { _, _, _ in true } == nil)
    try await Self.put(store, key, [300, 200])
    let accessesBefore = manager.accesses
    let hit = try #require(store.immediateLookup(key, maxBodyBytes: 500, readsBody: true) { _, _, _ in true })
    #expect(hit.bodySize == 500)
    // A small body written in chunks is kept as one buffer of exactly its size.
    #expect(hit.body.map(\.readableBytes) == [500])
    #expect(
      hit.body.first.map { Array($0.readableBytesView) } == [UInt8](repeating: 0, count: 300)
        + [UInt8](repeating: 1, count: 200))
    #expect(hit.meta.response.status == 200)
    #expect(manager.accesses == accessesBefore + 1, "a hit counts for eviction")
    #expect(store.immediateLookup(key, maxBodyBytes: 499, readsBody: true) { _, _, _ in true } == nil)
    #expect(store.immediateLookup(key, maxBodyBytes: 500, readsBody: true) { _, _, _ in false } == nil)
    #expect(manager.accesses == accessesBefore + 1, "a declined lookup touches nothing")

    // A write in progress is what `lookup` returns: this declines rather than serve the old one.
    let writer = try await store.missHandler(for: key, meta: Self.meta())
    #expect(store.immediateLookup(key, maxBodyBytes: 1 << 20, readsBody: true) { _, _, _ in true } == nil)
    try await writer.writeBody(ByteBuffer(repeating: 9, count: 10), eof: true)
    _ = try await writer.finish()
    #expect(store.immediateLookup(key, maxBodyBytes: 1 << 20, readsBody: true) { _, _, _ in true }?.bodySize == 10)
  }

  /// A memo value, as a server keeps its rendering of an entry.
  final class Rendering: Sendable {}

  @Test("serve in place: accept decides before anything counts, the memo is lent, serve sees the body")
  func memoryStoreServesInPlace() async throws {
    let manager = CountingEvictionManager(base: EvictionPolicy.lru.makeManager(capacity: 1 << 20))
    let store = try MemoryStore(evictionManager: manager)
    let key = CacheKey(primary: "/s")
    try await Self.put(store, key, [300, 200])
    let accessesBefore = manager.accesses
    var lentBefore: AnyObject?
    var sizeSeen = 0
    var statusSeen: UInt16 = 0
    var servedDeclined = false
    let declined = store.immediateServe(
      key, maxBodyBytes: 500, readsBody: true,
      accept: { meta, size, memo, lent in
        statusSeen = meta.response.status
        sizeSeen = size
        lentBefore = lent?.takeUnretainedValue()
        _ = memo?.keepMemo(Rendering())
        return false
      }, serve: { _, _ in servedDeclined = true })
    #expect(!declined)
    #expect(!servedDeclined, "a declined hit is not served")
    #expect(statusSeen == 200)
    #expect(sizeSeen == 500)
    #expect(lentBefore == nil, "nothing kept yet")
    #expect(manager.accesses == accessesBefore, "a declined lookup touches nothing")
    var body: [UInt8] = []
    var lent: AnyObject?
    let served = store.immediateServe(
      key, maxBodyBytes: 500, readsBody: true,
      accept: { _, _, _, kept in
        lent = kept?.takeUnretainedValue()
        return true
      }, serve: { chunks, _ in for chunk in chunks { body += chunk.readableBytesView } })
    #expect(served)
    #expect(lent is Rendering, "the value kept by the earlier reader is lent")
    #expect(body == [UInt8](repeating: 0, count: 300) + [UInt8](repeating: 1, count: 200))
    #expect(manager.accesses == accessesBefore + 1, "a hit counts for eviction")
    #expect(
      !store.immediateServe(
        key, maxBodyBytes: 499, readsBody: true, accept: { _, _, _, _ in true }, serve: { _, _ in }))
    // A write in progress is what `lookup` returns: declined.
    let writer = try await store.missHandler(for: key, meta: Self.meta())
    #expect(
      !store.immediateServe(
        key, maxBodyBytes: 1 << 20, readsBody: true, accept: { _, _, _, _ in true }, serve: { _, _ in }))
    try await writer.writeBody(ByteBuffer(repeating: 9, count: 10), eof: true)
    _ = try await writer.finish()
    var newLent: AnyObject?
    let servedNew = store.immediateServe(
      key, maxBodyBytes: 1 << 20, readsBody: true,
      accept: { _, size, _, kept in
        newLent = kept?.takeUnretainedValue()
        return size == 10
      }, serve: { _, _ in })
    #expect(servedNew)
    #expect(newLent == nil, "a new version starts without a memo")
  }

  @Test("instrumented serve counts as a hit with its bytes; a decline counts nothing")
  func instrumentedServe() async throws {
    let metrics = TestMetrics()
    let memory = InstrumentedStorage(
      try MemoryStore(), metrics: StoreMetrics(tier: "memory", latencySampleInterval: 1, factory: metrics),
      tracer: NoOpTracer())
    let store = TieredStore<InstrumentedStorage<MemoryStore>, MemoryStore>(memory: memory, disk: nil)
    let key = CacheKey(primary: "/t")
    try await Self.put(store, key, [700])
    let hits = { try metrics.expectCounter("edge_cdn_store_lookups_total", Self.tier + [("outcome", "hit")]) }
    let bytes = { try metrics.expectCounter("edge_cdn_store_read_bytes_total", Self.tier) }
    #expect(
      !store.immediateServe(
        key, maxBodyBytes: 1 << 20, readsBody: true, accept: { _, _, _, _ in false }, serve: { _, _ in }))
    #expect((try? hits().totalValue) ?? 0 == 0)
    #expect(
      store.immediateServe(
        key, maxBodyBytes: 1 << 20, readsBody: true, accept: { _, _, _, _ in true }, serve: { _, _ in })
    )
    #expect(try hits().totalValue == 1)
    #expect(try bytes().totalValue == 700)
    #expect(
      store.immediateServe(
        key, maxBodyBytes: 1 << 20, readsBody: false, accept: { _, _, _, _ in true }, serve: { _, _ in }))
    #expect(try hits().totalValue == 2)
    #expect(try bytes().totalValue == 700, "HEAD reads no body")
    #expect(try metrics.expectTimer("edge_cdn_store_lookup_duration_seconds", Self.tier).values.count == 2)
  }

  @Test("instrumented: a hit and its bytes are counted, a decline is not; tiered asks RAM only")
  func instrumentedAndTiered() async throws {
    let metrics = TestMetrics()
    let memory = InstrumentedStorage(
      try MemoryStore(), metrics: StoreMetrics(tier: "memory", latencySampleInterval: 1, factory: metrics),
      tracer: NoOpTracer())
    let store = TieredStore<InstrumentedStorage<MemoryStore>, MemoryStore>(memory: memory, disk: nil)
    let key = CacheKey(primary: "/b")
    try await Self.put(store, key, [700])
    #expect(store.immediateLookup(key, maxBodyBytes: 1 << 20, readsBody: true) { _, _, _ in false } == nil)
    #expect(
      store.immediateLookup(CacheKey(primary: "/none"), maxBodyBytes: 1 << 20, readsBody: true) { _, _, _ in true }
        == nil)
    let hits = { try metrics.expectCounter("edge_cdn_store_lookups_total", Self.tier + [("outcome", "hit")]) }
    let bytes = { try metrics.expectCounter("edge_cdn_store_read_bytes_total", Self.tier) }
    #expect((try? hits().totalValue) ?? 0 == 0)
    #expect(store.immediateLookup(key, maxBodyBytes: 1 << 20, readsBody: true) { _, _, _ in true }?.bodySize == 700)
    #expect(try hits().totalValue == 1)
    #expect(try bytes().totalValue == 700)
    // Sampled like any lookup (every one at interval 1): the lookup and its first byte.
    let lookupsTimed = { try metrics.expectTimer("edge_cdn_store_lookup_duration_seconds", Self.tier).values.count }
    let firstBytesTimed = {
      try metrics.expectTimer("edge_cdn_store_first_byte_duration_seconds", Self.tier).values.count
    }
    #expect(try lookupsTimed() == 1)
    #expect(try firstBytesTimed() == 1)
    // HEAD: a hit, no body read.
    #expect(store.immediateLookup(key, maxBodyBytes: 1 << 20, readsBody: false) { _, _, _ in true } != nil)
    #expect(try hits().totalValue == 2)
    #expect(try bytes().totalValue == 700)
    #expect(
      (try? metrics.expectCounter("edge_cdn_store_lookups_total", Self.tier + [("outcome", "miss")]).totalValue) ?? 0
        == 0, "a decline is not a miss")
  }
}

/// Counts `access` calls and forwards everything to a real manager.
final class CountingEvictionManager: EvictionManager {
  let base: any EvictionManager
  private let accessCount = Atomic<Int>(0)
  var accesses: Int { accessCount.load(ordering: .relaxed) }

  init(base: any EvictionManager) { self.base = base }

  var totalSize: Int { base.totalSize }
  var totalItems: Int { base.totalItems }
  var evictedSize: Int { base.evictedSize }
  var evictedItems: Int { base.evictedItems }
  func admit(_ key: CompactCacheKey, size: Int, freshUntil: CacheTime) -> [CompactCacheKey] {
    base.admit(key, size: size, freshUntil: freshUntil)
  }
  func incrementWeight(_ key: CompactCacheKey, delta: Int, maxWeight: Int?) -> [CompactCacheKey] {
    base.incrementWeight(key, delta: delta, maxWeight: maxWeight)
  }
  func remove(_ key: CompactCacheKey) { base.remove(key) }
  func access(_ key: CompactCacheKey, size: Int, freshUntil: CacheTime) -> Bool {
    accessCount.add(1, ordering: .relaxed)
    return base.access(key, size: size, freshUntil: freshUntil)
  }
  func peek(_ key: CompactCacheKey) -> Bool { base.peek(key) }
  func evict(atLeast bytes: Int) -> [CompactCacheKey] { base.evict(atLeast: bytes) }
  func save(to directory: String) async throws(CacheError) { try await base.save(to: directory) }
  func load(from directory: String) async throws(CacheError) { try await base.load(from: directory) }
}
