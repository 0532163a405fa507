import CoreMetrics
import Logging
import MetricsTestKit
import NIOCore
import Synchronization
import Testing

@testable import EdgeCDNStore

/// The shared tier's time limits: one deadline table (`DeadlineWatch`) instead of a
/// timer per call, and a body read ahead by the call's task instead of a task per chunk.
@Suite("Shared tier deadlines")
struct SharedDeadlineTests {
  static let key = CacheKey(primary: "deadline-object")

  final class Fired: Sendable {
    let count = Atomic<Int>(0)
    /// When it first fired: read in the callback, which runs on an event loop, so a
    /// starved cooperative pool does not delay it as it delays the test's polling.
    let firstAt = Mutex<ContinuousClock.Instant?>(nil)
    func fire() {
      firstAt.withLock { $0 = $0 ?? ContinuousClock.now }
      count.add(1, ordering: .relaxed)
    }
    var value: Int { count.load(ordering: .relaxed) }
  }

  @Test("deadlines removed in time never fire and leave nothing pending")
  func removedDeadlinesDoNotFire() async throws {
    let watch = DeadlineWatch()
    let fired = Fired()
    let clock = ContinuousClock()
    let start = clock.now
    let tokens = (0..<200).map { _ in watch.add(after: .seconds(1)) { fired.fire() } }
    #expect(watch.pendingCount == 200)
    for token in tokens { watch.remove(token) }
    let removedWithin = clock.now - start
    #expect(watch.pendingCount == 0)
    try await Task.sleep(for: .milliseconds(1500))
    // Only meaningful when the removals beat the deadline (a starved test may not).
    if removedWithin < .seconds(1) { #expect(fired.value == 0) }
  }

  @Test("a deadline fires once, even when a later one was armed first")
  func earlierDeadlineFiresFirst() async throws {
    let watch = DeadlineWatch()
    let late = Fired()
    let early = Fired()
    _ = watch.add(after: .seconds(60)) { late.fire() }
    let start = ContinuousClock.now
    _ = watch.add(after: .milliseconds(50)) { early.fire() }
    #expect(try await TieredFixture.eventually(timeout: .seconds(40)) { early.value == 1 })
    let elapsed = try #require(early.firstAt.withLock { $0 }) - start
    // Well under the 60 s of the deadline armed first: the earlier one re-armed the timer.
    #expect(elapsed >= .milliseconds(50) && elapsed < .seconds(30), "fired after \(elapsed)")
    try await Task.sleep(for: .milliseconds(100))
    #expect(early.value == 1, "fired more than once")
    #expect(late.value == 0)
    #expect(watch.pendingCount == 1, "the 60 s deadline is still pending")
  }

  @Test("a body that stalls after its first chunk fails the read within the chunk limit, counted")
  func stalledBodyTimesOut() async throws {
    let metrics = TestMetrics()
    let shared = FaultySharedTier()
    let body = TieredFixture.body(size: 64_000, seed: 7)
    try await TieredFixture.write(SharedAsStorage(shared: shared.base), Self.key, body, chunk: 4096)
    shared.holdBodiesAfterFirstChunk()
    let store = Tiered(
      memory: try TieredFixture.memory(), disk: nil, shared: shared,
      // A 3 s chunk limit: short against the held body (held until the test ends), long
      // enough that a pool starved by the whole suite still gets the first chunk in time.
      configuration: .init(shared: .init(callTimeout: .seconds(30), chunkTimeout: .seconds(3))),
      metricsFactory: metrics)

    var hit = try #require(try await store.lookup(Self.key))
    let first = try #require(try await hit.handler.readBody())
    #expect(first.readableBytes > 0)
    let clock = ContinuousClock()
    let start = clock.now
    await #expect(throws: CacheError.self) {
      for _ in 0..<1000 { guard try await hit.handler.readBody() != nil else { return } }
    }
    let elapsed = clock.now - start
    // Loose bound: the whole suite on 2 cores can starve the pool for seconds; a
    // stalled read without its limit would wait until the body is released.
    #expect(elapsed < .seconds(25), "the stalled read took \(elapsed) against a 3 s chunk limit")
    try await hit.handler.finish()
    #expect(try metrics.expectCounter("edge_cdn_store_shared_call_failures_total").totalValue >= 1)
    #expect(try await store.memoryTier.lookup(Self.key) == nil, "a failed fill is not committed")
    shared.releaseBodies()
    try await TieredFixture.close(store)
  }

  @Test("shared hits read to the end leave no deadline pending and return whole bodies")
  func sharedHitsEndCleanly() async throws {
    let shared = InMemorySharedTier()
    let bodies = (0..<8).map { TieredFixture.body(size: 1000 + $0 * 9000, seed: UInt8($0)) }
    for (index, body) in bodies.enumerated() {
      try await TieredFixture.write(SharedAsStorage(shared: shared), CacheKey(primary: "shared-\(index)"), body)
    }
    // A watch of its own: the process's one is shared with every test running meanwhile.
    let deadlines = DeadlineWatch()
    let store = Tiered(
      memory: try TieredFixture.memory(), disk: nil, shared: shared,
      // Long limits: the shared tier's deadlines run on an event loop, so a cooperative
      // pool starved by the whole suite on 2 cores can make a call miss a short one.
      configuration: .init(
        fillFromShared: false, writeBehind: false,
        shared: .init(callTimeout: .seconds(30), chunkTimeout: .seconds(30))),
      metricsFactory: MetricsSystem.factory, logger: Logger(label: "shared-deadline-test"), deadlines: deadlines)
    for round in 0..<3 {
      for (index, body) in bodies.enumerated() {
        #expect(try await TieredFixture.read(store, CacheKey(primary: "shared-\(index)")) == body)
        // A call's deadline goes when its result is offered, a read's when its chunk comes:
        // both before the reader resumes, so none is left once the body was read.
        #expect(deadlines.pendingCount == 0, "round \(round), object \(index)")
      }
    }
    // An early finish releases the stream, and its pending read's deadline, too.
    var hit = try #require(try await store.lookup(CacheKey(primary: "shared-7")))
    _ = try await hit.handler.readBody()
    try await hit.handler.finish()
    #expect(deadlines.pendingCount == 0, "after an early finish")
    try await TieredFixture.close(store)
  }
}
