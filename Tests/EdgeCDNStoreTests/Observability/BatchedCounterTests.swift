import CoreMetrics
import Dispatch
import EdgeCDNStore
import MetricsTestKit
import NIOCore
import Testing
import Tracing

/// Per-thread counting (`StripedCounters`, `BatchedCounter`) stays exact: sums after
/// adds from several threads, and a backend fed in batches holds every unit once
/// `publish()` ran (what /metrics calls before it renders).
@Suite("Striped and batched counters")
struct BatchedCounterTests {
  static let tier = [("tier", "memory")]

  @Test("striped counters: adds from several threads sum exactly")
  func stripedSums() {
    let counters = StripedCounters(count: 3)
    DispatchQueue.concurrentPerform(iterations: 4) { thread in
      for _ in 0..<10_000 { counters.add(1, to: thread % 3) }
      counters.add(5, to: 2)
    }
    #expect(counters.sum(0) == 20_000)
    #expect(counters.sum(1) == 10_000)
    #expect(counters.sum(2) == 10_000 + 20)
  }

  @Test("a batched counter lags by less than a batch per thread, and publish() makes it exact")
  func batchedCounterPublishes() throws {
    let metrics = TestMetrics()
    let counter = BatchedCounter(Counter(label: "c", factory: metrics), batch: 64)
    DispatchQueue.concurrentPerform(iterations: 2) { _ in
      for _ in 0..<1_000 { counter.increment() }
    }
    let before = try metrics.expectCounter("c").totalValue
    // Each thread has handed over all its whole batches (15 of 64 = 960 units).
    #expect(before >= 2 * 960)
    #expect(before <= 2_000)
    counter.publish()
    #expect(try metrics.expectCounter("c").totalValue == 2_000)
    counter.publish()
    #expect(try metrics.expectCounter("c").totalValue == 2_000, "nothing is handed over twice")
    counter.increment(by: 7)
    counter.publish()
    #expect(try metrics.expectCounter("c").totalValue == 2_007)
  }

  @Test("batch 1 hands every add over at once")
  func unbatched() throws {
    let metrics = TestMetrics()
    let counter = BatchedCounter(Counter(label: "c", factory: metrics), batch: 1)
    counter.increment()
    counter.increment(by: 3)
    #expect(try metrics.expectCounter("c").totalValue == 4)
  }

  /// The store's hit counters with a batch, as edge-cdn runs them: hits served on two
  /// threads at once, the backend exact after `publish()`.
  @Test("store hit and byte counters are exact at publish after hits on two threads")
  func storeCountersExactAtPublish() async throws {
    let metrics = TestMetrics()
    let storeMetrics = StoreMetrics(tier: "memory", latencySampleInterval: 64, counterBatch: 256, factory: metrics)
    let store = InstrumentedStorage(try MemoryStore(), metrics: storeMetrics, tracer: NoOpTracer())
    let key = CacheKey(primary: "/hot")
    try await ImmediateLookupTests.put(store, key, [1000])
    let perThread = 3_000
    DispatchQueue.concurrentPerform(iterations: 2) { _ in
      for index in 0..<perThread {
        let served = store.immediateServe(
          key, maxBodyBytes: 1 << 20, readsBody: index % 3 != 0, accept: { _, _, _, _ in true }, serve: { _, _ in })
        precondition(served, "a stored object is served")
      }
    }
    storeMetrics.publish()
    let hits = try metrics.expectCounter("edge_cdn_store_lookups_total", Self.tier + [("outcome", "hit")])
    #expect(hits.totalValue == Int64(2 * perThread))
    // One hit in three is a HEAD: no body read.
    let bodies = 2 * (perThread - perThread / 3)
    #expect(try metrics.expectCounter("edge_cdn_store_read_bytes_total", Self.tier).totalValue == Int64(bodies * 1000))
  }
}
