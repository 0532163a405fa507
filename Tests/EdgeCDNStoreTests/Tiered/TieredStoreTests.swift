import EdgeCDNStore
import MetricsTestKit
import NIOCore
import Synchronization
import Testing

@Suite("TieredStore behaviour", .hangGuard())
struct TieredStoreTests {
  static let key = CacheKey(primary: "tiered-object")

  @Test("a disk hit is promoted into RAM on the second hit, not the first")
  func promotionOnSecondHit() async throws {
    let metrics = TestMetrics()
    let disk = try await TieredFixture.disk()
    let store = Tiered(
      memory: try TieredFixture.memory(), disk: disk,
      configuration: .init(promotion: .onHit(count: 2, within: .seconds(60))), metricsFactory: metrics)
    let body = TieredFixture.body(size: 100_000, seed: 3)
    try await TieredFixture.write(disk, Self.key, body)

    #expect(try await TieredFixture.read(store, Self.key) == body)
    #expect(try await store.memoryTier.lookup(Self.key) == nil, "the first disk hit must not promote")
    #expect(try await TieredFixture.read(store, Self.key) == body)
    #expect(try await TieredFixture.read(store.memoryTier, Self.key) == body, "the second disk hit promotes")
    #expect(try metrics.expectCounter("edge_cdn_store_promotions_total").totalValue == 1)
    try await TieredFixture.close(store)
  }

  @Test("an object larger than RAM's maximum object size goes to disk only")
  func largeObjectSkipsRAM() async throws {
    let store = Tiered(memory: try TieredFixture.memory(maxObjectSize: 64 << 10), disk: try await TieredFixture.disk())
    let body = TieredFixture.body(size: 200_000, seed: 4)
    try await TieredFixture.write(store, Self.key, body, chunk: 16_384)
    #expect(try await store.memoryTier.lookup(Self.key) == nil)
    #expect(try await TieredFixture.read(store, Self.key) == body)
    try await TieredFixture.close(store)
  }

  @Test("a failing tier under the tee does not fail the client's write, and is counted")
  func teeFailureOfOneTier() async throws {
    let metrics = TestMetrics()
    let failing = FailingWritesStore(base: try TieredFixture.memory(), failAfterBytes: 10_000)
    let store = TieredStore<MemoryStore, FailingWritesStore>(
      memory: try TieredFixture.memory(), disk: failing, metricsFactory: metrics)
    let body = TieredFixture.body(size: 50_000, seed: 5)
    try await TieredFixture.write(store, Self.key, body)
    #expect(try await TieredFixture.read(store, Self.key) == body)
    #expect(try await failing.lookup(Self.key) == nil, "the failed tier must hold nothing")
    #expect(
      try metrics.expectCounter("edge_cdn_store_tier_write_failures_total", [("tier", "disk")]).totalValue == 1)

    // Both tiers failing fails the write.
    let bothFailing = TieredStore<FailingWritesStore, FailingWritesStore>(
      memory: FailingWritesStore(base: try TieredFixture.memory(), failAfterBytes: 10), disk: failing)
    await #expect(throws: CacheError.self) {
      try await TieredFixture.write(bothFailing, CacheKey(primary: "both"), body)
    }
  }

  @Test("an object from the shared tier streams to the reader while it fills RAM and disk")
  func sharedFillStreams() async throws {
    let shared = FaultySharedTier()
    let body = TieredFixture.body(size: 300_000, seed: 6)
    try await TieredFixture.write(SharedAsStorage(shared: shared.base), Self.key, body)
    shared.holdBodiesAfterFirstChunk()
    // Long time limits: this test holds the body back on purpose, for as long as a
    // loaded machine needs to see the first chunk.
    let store = Tiered(
      memory: try TieredFixture.memory(), disk: try await TieredFixture.disk(), shared: shared,
      configuration: .init(shared: .init(callTimeout: .seconds(30), chunkTimeout: .seconds(30))))

    guard let hit = try await store.lookup(Self.key) else { throw Failure("the shared tier must serve the object") }
    let (firstChunk, firstSeen) = AsyncStream.makeStream(of: Int.self)
    let reader = Task {
      var handler = hit.handler
      guard let first = try await handler.readBody() else { return [UInt8]() }
      firstSeen.yield(first.readableBytes)
      let rest = try await TieredFixture.readAll(&handler)
      try await handler.finish()
      return Array(first.readableBytesView) + rest
    }
    // The first chunk arrives while the rest of the shared body is still held back.
    let firstSize = try await withThrowingTaskGroup(of: Int.self) { group in
      group.addTask {
        for await size in firstChunk { return size }
        return 0
      }
      group.addTask {
        try await Task.sleep(for: .seconds(5))
        throw Failure("no first byte within 5 s while the shared body was held")
      }
      defer { group.cancelAll() }
      return try await group.next() ?? 0
    }
    #expect(firstSize > 0)
    #expect(try await store.disk!.lookup(Self.key) == nil, "nothing is committed before the body ends")
    shared.releaseBodies()
    #expect(try await reader.value == body)
    #expect(try await TieredFixture.read(store.memoryTier, Self.key) == body, "the fill reached RAM")
    #expect(try await TieredFixture.read(store.disk!, Self.key) == body, "the fill reached disk")
    try await TieredFixture.close(store)
  }

  @Test("a slow or partitioned shared tier times out without stalling the client")
  func partitionedSharedTierTimesOut() async throws {
    let shared = FaultySharedTier()
    // Hangs far longer than the bound checked below. The bound is loose because the
    // whole suite on 2 cores can starve the cooperative pool for seconds (3.5 s seen,
    // 11.7 s with other test runs on the machine); a stalled lookup would take the full 30 s.
    shared.set(.partitioned(hang: .seconds(30)))
    let configuration = TieredStoreConfiguration(shared: .init(callTimeout: .milliseconds(100)))
    let store = Tiered(memory: try TieredFixture.memory(), disk: nil, shared: shared, configuration: configuration)
    let clock = ContinuousClock()
    var start = clock.now
    #expect(try await store.lookup(Self.key) == nil, "an unreachable shared tier is a miss")
    let elapsed = clock.now - start
    #expect(elapsed < .seconds(20), "lookup took \(elapsed) against a 100 ms call timeout")

    shared.set(.slow(.seconds(30)))
    start = clock.now
    #expect(try await store.purge(Self.key.compact, reason: .invalidation) == false)
    let slow = clock.now - start
    #expect(slow < .seconds(20), "purge took \(slow) against a 100 ms call timeout")
    try await TieredFixture.close(store)
  }

  @Test("a failing shared tier opens the circuit; later lookups do not call it; health is degraded")
  func failingSharedOpensCircuit() async throws {
    let shared = FaultySharedTier()
    shared.set(.failing)
    let configuration = TieredStoreConfiguration(
      shared: .init(breaker: .init(failureThreshold: 3, openDuration: .seconds(30))))
    let store = Tiered(memory: try TieredFixture.memory(), disk: nil, shared: shared, configuration: configuration)
    for _ in 0..<3 { #expect(try await store.lookup(Self.key) == nil) }
    #expect(store.shared?.breaker.state == .open)
    let callsWhenOpened = shared.calls.load(ordering: .relaxed)
    for _ in 0..<10 { #expect(try await store.lookup(Self.key) == nil) }
    #expect(shared.calls.load(ordering: .relaxed) == callsWhenOpened, "an open circuit must not call the tier")
    let health = await store.health()
    #expect(health.last?.tier == "shared" && health.last?.status == .degraded)
    #expect(await store.overallStatus() == .degraded)
    try await TieredFixture.close(store)
  }

  @Test("write-behind uploads reach the shared tier; a full queue drops and counts")
  func writeBehindDropsWhenFull() async throws {
    let metrics = TestMetrics()
    let shared = FaultySharedTier()
    let store = Tiered(
      memory: try TieredFixture.memory(), disk: nil, shared: shared,
      // Long limits: deadlines run on an event loop, and the whole suite on 2 cores can
      // starve the cooperative pool past a short one; this test is about the queue.
      configuration: .init(
        shared: .init(
          callTimeout: .seconds(30), chunkTimeout: .seconds(30), uploadTimeout: .seconds(30),
          writeBehindCapacity: 2)), metricsFactory: metrics)
    try await TieredFixture.write(store, Self.key, TieredFixture.body(size: 1000, seed: 1))
    #expect(try await TieredFixture.eventually { shared.base.contains(Self.key) }, "upload must reach the shared tier")

    shared.set(.slow(.milliseconds(300)))
    for i in 0..<10 {
      try await TieredFixture.write(store, CacheKey(primary: "queued-\(i)"), TieredFixture.body(size: 100, seed: 2))
    }
    #expect(store.uploadsDropped >= 7, "one running and two waiting at most; \(store.uploadsDropped) dropped")
    #expect(try metrics.expectCounter("edge_cdn_store_shared_dropped_total").totalValue == store.uploadsDropped)
    shared.set(.healthy)
    try await TieredFixture.close(store)
  }

  @Test("updateMeta reaches RAM, disk and the shared tier; health lists the three tiers")
  func updateMetaReachesEveryTier() async throws {
    let shared = FaultySharedTier()
    let store = Tiered(
      memory: try TieredFixture.memory(), disk: try await TieredFixture.disk(), shared: shared,
      configuration: .init(promotion: .never, shared: .init(callTimeout: .seconds(30), chunkTimeout: .seconds(30))))
    let body = TieredFixture.body(size: 20_000, seed: 11)
    try await TieredFixture.write(store, Self.key, body)
    #expect(try await TieredFixture.eventually { shared.base.contains(Self.key) })
    let updated = TieredFixture.meta("revalidated")
    #expect(try await store.updateMeta(Self.key, meta: updated))
    #expect(try await store.memoryTier.lookup(Self.key)?.meta == updated)
    #expect(try await store.disk?.lookup(Self.key)?.meta == updated)
    #expect(try await shared.base.fetchMeta(Self.key)?.meta == updated)
    #expect(try await TieredFixture.read(store, Self.key) == body, "the body is unchanged")
    #expect(await store.health().map(\.tier) == ["memory", "disk", "shared"])
    #expect(await store.overallStatus() == .ok)
    try await TieredFixture.close(store)
  }

  @Test("another edge reads an uploaded object from the shared tier; a purge reaches it, retried when it failed")
  func twoEdgesShareAndPurge() async throws {
    let metrics = TestMetrics()
    let shared = FaultySharedTier()
    let configuration = TieredStoreConfiguration(
      shared: .init(
        callTimeout: .seconds(30), chunkTimeout: .seconds(30), breaker: .init(failureThreshold: 100), maxAttempts: 20,
        retryBackoff: .milliseconds(20)))
    let edgeA = Tiered(memory: try TieredFixture.memory(), disk: nil, shared: shared, configuration: configuration)
    let edgeB = Tiered(
      memory: try TieredFixture.memory(), disk: try await TieredFixture.disk(), shared: shared,
      configuration: configuration, metricsFactory: metrics)
    let body = TieredFixture.body(size: 70_000, seed: 9)
    try await TieredFixture.write(edgeA, Self.key, body)
    #expect(try await TieredFixture.eventually { shared.base.contains(Self.key) })

    #expect(try await TieredFixture.read(edgeB, Self.key) == body, "edge B reads edge A's object from the shared tier")
    #expect(try await TieredFixture.read(edgeB.memoryTier, Self.key) == body, "and keeps a copy in RAM")
    #expect(try await TieredFixture.read(edgeB.disk!, Self.key) == body, "and on disk")

    shared.set(.failing)
    #expect(try await edgeB.purge(Self.key.compact, reason: .invalidation), "the local copies are removed")
    #expect(shared.base.contains(Self.key), "the shared delete failed")
    shared.set(.healthy)
    #expect(try await TieredFixture.eventually { !shared.base.contains(Self.key) }, "the retry deletes it")
    #expect(try metrics.expectCounter("edge_cdn_store_shared_retries_total").totalValue >= 1)
    try await TieredFixture.close(edgeA)
    try await TieredFixture.close(edgeB)
  }
}

struct Failure: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// Lets the fixture's write helper fill a shared tier directly.
struct SharedAsStorage: Storage {
  let shared: InMemorySharedTier
  final class Miss: MissHandler {
    let shared: InMemorySharedTier
    let key: CacheKey
    let meta: CacheMeta
    let chunks = Mutex<[ByteBuffer]>([])
    init(shared: InMemorySharedTier, key: CacheKey, meta: CacheMeta) {
      self.shared = shared
      self.key = key
      self.meta = meta
    }
    var streamingWriteTag: StreamingWriteTag? { nil }
    func writeBody(_ data: ByteBuffer, eof: Bool) async throws(CacheError) { chunks.withLock { $0.append(data) } }
    func finish() async throws(CacheError) -> MissFinish {
      let all = chunks.withLock { $0 }
      try await shared.store(key, meta: meta, body: ListStream(all))
      return .created(size: all.reduce(0) { $0 + $1.readableBytes })
    }
    func abort(reason: String) async {}
  }
  func lookup(_ key: CacheKey) async throws(CacheError) -> CacheHit<MemoryHitHandler>? { nil }
  func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Miss {
    Miss(shared: shared, key: key, meta: meta)
  }
  func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool { false }
  func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool { false }
}

final class ListStream: SharedBodyStream {
  let chunks: Mutex<[ByteBuffer]>
  init(_ chunks: [ByteBuffer]) { self.chunks = Mutex(chunks.reversed()) }
  func next() async throws(CacheError) -> ByteBuffer? { chunks.withLock { $0.popLast() } }
  func cancel() async {}
}
