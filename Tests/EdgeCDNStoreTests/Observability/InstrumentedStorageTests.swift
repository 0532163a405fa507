import CoreMetrics
import EdgeCDNStore
import InMemoryTracing
import MetricsTestKit
import NIOCore
import StorageConformance
import Testing
import Tracing

@Suite("InstrumentedStorage: metrics, spans, health", .hangGuard())
struct InstrumentedStorageTests {
  static func meta() -> CacheMeta {
    let now = CacheTime.now()
    return CacheMeta(freshUntil: now.adding(seconds: 60), created: now, response: .init(status: 200))
  }

  static let tier = [("tier", "memory")]

  @Test("a body taken as a file region counts as read: bytes, first byte, read closed")
  func takenFileBodyIsCounted() async throws {
    let metrics = TestMetrics()
    let storeMetrics = StoreMetrics(tier: "memory", latencySampleInterval: 1, factory: metrics)
    let store = InstrumentedStorage(
      try MemoryStore(configuration: .init(fileBodyThreshold: 4096)), metrics: storeMetrics, tracer: NoOpTracer())
    let key = CacheKey(primary: "/file")
    let writer = try await store.missHandler(for: key, meta: Self.meta())
    try await writer.writeBody(ByteBuffer(repeating: 1, count: 100_000), eof: true)
    _ = try await writer.finish()
    var hit = try #require(try await store.lookup(key))
    try await hit.handler.seek(start: 1000, end: nil)
    let taken = hit.handler.takeFileBody()
    let file = try #require(taken)
    #expect(file.offset == 1000 && file.length == 99_000)
    #expect(try await hit.handler.readBody() == nil)
    try await hit.handler.finish()
    storeMetrics.publishGauges()
    #expect(try metrics.expectMeter("edge_cdn_store_reads_in_flight", Self.tier).lastValue == 0)
    #expect(try metrics.expectCounter("edge_cdn_store_read_bytes_total", Self.tier).totalValue == 99_000)
    #expect(try metrics.expectTimer("edge_cdn_store_first_byte_duration_seconds", Self.tier).values.count == 1)
  }

  @Test("lookups by outcome, bytes, in-flight gauges, finish and purge timings")
  func countsOperations() async throws {
    let metrics = TestMetrics()
    let storeMetrics = StoreMetrics(tier: "memory", latencySampleInterval: 1, factory: metrics)
    let store = InstrumentedStorage(try MemoryStore(), metrics: storeMetrics, tracer: NoOpTracer())
    let key = CacheKey(primary: "/a")
    #expect(try await store.lookup(key) == nil)

    let writer = try await store.missHandler(for: key, meta: Self.meta())
    #expect(try metrics.expectMeter("edge_cdn_store_writes_in_flight", Self.tier).lastValue == 1)
    try await writer.writeBody(ByteBuffer(repeating: 1, count: 300), eof: false)
    try await writer.writeBody(ByteBuffer(repeating: 1, count: 200), eof: true)
    _ = try await writer.finish()
    #expect(try metrics.expectMeter("edge_cdn_store_writes_in_flight", Self.tier).lastValue == 0)
    #expect(try metrics.expectCounter("edge_cdn_store_written_bytes_total", Self.tier).totalValue == 500)
    #expect(try metrics.expectTimer("edge_cdn_store_write_finish_duration_seconds", Self.tier).values.count == 1)
    #expect(try metrics.expectMeter("edge_cdn_store_objects", Self.tier).lastValue == 1)

    var hit = try #require(try await store.lookup(key))
    #expect(try metrics.expectMeter("edge_cdn_store_reads_in_flight", Self.tier).lastValue == 1)
    while try await hit.handler.readBody() != nil {}
    try await hit.handler.finish()
    // Published on sampled lookups (here every one) and when an exposition asks.
    #expect(try metrics.expectMeter("edge_cdn_store_reads_in_flight", Self.tier).lastValue == 1)
    storeMetrics.publishGauges()
    #expect(try metrics.expectMeter("edge_cdn_store_reads_in_flight", Self.tier).lastValue == 0)
    #expect(try metrics.expectCounter("edge_cdn_store_read_bytes_total", Self.tier).totalValue == 500)
    #expect(try metrics.expectCounter("edge_cdn_store_lookups_total", Self.tier + [("outcome", "hit")]).totalValue == 1)
    #expect(
      try metrics.expectCounter("edge_cdn_store_lookups_total", Self.tier + [("outcome", "miss")]).totalValue == 1)
    #expect(try metrics.expectTimer("edge_cdn_store_lookup_duration_seconds", Self.tier).values.count == 2)
    #expect(try metrics.expectTimer("edge_cdn_store_first_byte_duration_seconds", Self.tier).values.count == 1)

    #expect(try await store.purge(key.compact, reason: .invalidation))
    #expect(try await !store.purge(key.compact, reason: .invalidation))
    #expect(
      try metrics.expectCounter("edge_cdn_store_purges_total", Self.tier + [("outcome", "removed")]).totalValue == 1)
    #expect(
      try metrics.expectCounter("edge_cdn_store_purges_total", Self.tier + [("outcome", "missing")]).totalValue == 1)
    #expect(try metrics.expectMeter("edge_cdn_store_objects", Self.tier).lastValue == 0)
  }

  @Test("latency is sampled one lookup in N while the lookup counters stay exact")
  func sampling() async throws {
    let metrics = TestMetrics()
    let store = InstrumentedStorage(
      try MemoryStore(), metrics: StoreMetrics(tier: "memory", latencySampleInterval: 8, factory: metrics),
      tracer: NoOpTracer())
    for index in 0..<32 { _ = try await store.lookup(CacheKey(primary: "/missing/\(index)")) }
    #expect(
      try metrics.expectCounter("edge_cdn_store_lookups_total", Self.tier + [("outcome", "miss")]).totalValue == 32)
    #expect(try metrics.expectTimer("edge_cdn_store_lookup_duration_seconds", Self.tier).values.count == 4)
  }

  @Test("a dropped writer counts as aborted and leaves the gauge at zero; errors are counted by kind")
  func droppedWriterAndErrors() async throws {
    let metrics = TestMetrics()
    let store = InstrumentedStorage(
      try MemoryStore(configuration: .init(byteBudget: 1 << 20, maxObjectSize: 100, shardCount: 4)),
      metrics: StoreMetrics(tier: "memory", factory: metrics), tracer: NoOpTracer())
    do {
      let writer = try await store.missHandler(for: CacheKey(primary: "/dropped"), meta: Self.meta())
      try await writer.writeBody(ByteBuffer(repeating: 1, count: 10), eof: false)
    }
    #expect(try metrics.expectMeter("edge_cdn_store_writes_in_flight", Self.tier).lastValue == 0)
    #expect(
      try metrics.expectCounter("edge_cdn_store_writes_total", Self.tier + [("outcome", "aborted")]).totalValue == 1)

    let big = try await store.missHandler(for: CacheKey(primary: "/big"), meta: Self.meta())
    await #expect(throws: CacheError.self) { try await big.writeBody(ByteBuffer(repeating: 1, count: 101), eof: true) }
    #expect(
      try metrics.expectCounter("edge_cdn_store_errors_total", Self.tier + [("kind", "object_too_large")]).totalValue
        == 1)
    #expect(try metrics.expectCounter("edge_cdn_store_admissions_rejected_total", Self.tier).totalValue == 1)
  }

  @Test("evictions reach the removals counter through MetricsStorageObserver")
  func removalsByReason() async throws {
    let metrics = TestMetrics()
    let storeMetrics = StoreMetrics(tier: "memory", factory: metrics)
    let memory = try MemoryStore(
      configuration: .init(byteBudget: 8192, maxObjectSize: 4096, shardCount: 2),
      observer: MetricsStorageObserver(metrics: storeMetrics))
    let store = InstrumentedStorage(memory, metrics: storeMetrics, tracer: NoOpTracer())
    for index in 0..<8 {
      let writer = try await store.missHandler(for: CacheKey(primary: "/\(index)"), meta: Self.meta())
      try await writer.writeBody(ByteBuffer(repeating: 1, count: 3000), eof: true)
      _ = try await writer.finish()
    }
    let evicted = try metrics.expectCounter("edge_cdn_store_removals_total", Self.tier + [("reason", "capacity")])
    #expect(evicted.totalValue >= 5)
    #expect(memory.usedBytes <= 8192)
  }

  @Test("spans nest under the caller's ServiceContext and carry the outcome")
  func spansNest() async throws {
    let tracer = InMemoryTracer()
    let store = InstrumentedStorage(
      try MemoryStore(), metrics: StoreMetrics(tier: "memory", factory: TestMetrics()), tracer: tracer)
    let parent = tracer.startSpan("request", context: .topLevel)
    try await ServiceContext.withValue(parent.context) {
      _ = try await store.lookup(CacheKey(primary: "/nested"))
      _ = try await store.purge(CacheKey(primary: "/nested").compact, reason: .invalidation)
    }
    parent.end()
    let spans = tracer.finishedSpans
    let lookup = try #require(spans.first { $0.operationName == "cache.lookup" })
    let request = try #require(spans.first { $0.operationName == "request" })
    #expect(lookup.parentSpanID == request.spanID)
    #expect(lookup.traceID == request.traceID)
    #expect(lookup.attributes["cache.outcome"]?.toSpanAttribute() == "miss")
    #expect(spans.contains { $0.operationName == "cache.purge" && $0.parentSpanID == request.spanID })
  }

  @Test("health: RAM degrades when writes in flight hold most of the budget")
  func health() async throws {
    let memory = try MemoryStore(configuration: .init(byteBudget: 10_000, maxObjectSize: 10_000, shardCount: 2))
    #expect(await memory.overallStatus() == .ok)
    let writer = try await memory.missHandler(for: CacheKey(primary: "/held"), meta: Self.meta())
    try await writer.writeBody(ByteBuffer(repeating: 1, count: 9_500), eof: false)
    let report = await memory.health()
    #expect(report.first?.status == .degraded)
    #expect(report.first?.reasons.first?.contains("in flight") == true)
    await writer.abort(reason: "test")
    #expect(await memory.overallStatus() == .ok)
  }

  static let fixture = StorageFixture<InstrumentedStorage<MemoryStore>>(
    makeStorage: { observer in
      let metrics = StoreMetrics(tier: "memory", factory: TestMetrics())
      let memory = try MemoryStore(
        configuration: MemoryStoreConfiguration(byteBudget: 8 << 20, maxObjectSize: 4 << 20, shardCount: 16),
        observer: MetricsStorageObserver(metrics: metrics, next: observer))
      return InstrumentedStorage(memory, metrics: metrics, tracer: NoOpTracer())
    },
    byteBudget: 8 << 20,
    usedBytes: { $0.base.usedBytes },
    objectCount: { $0.base.objectCount })

  @Test(
    "InstrumentedStorage over MemoryStore passes StorageConformance",
    arguments: StorageConformance<InstrumentedStorage<MemoryStore>>.checks)
  func conformance(_ check: ConformanceCheck<InstrumentedStorage<MemoryStore>>) async throws {
    try await check.run(with: Self.fixture)
  }
}
