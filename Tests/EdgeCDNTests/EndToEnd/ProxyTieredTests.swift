import EdgeCDNStore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TestSupport
import Testing

@testable import EdgeCDN

/// The proxy on RAM over disk, as the embedded default store runs, with objects larger
/// than RAM's maximum object size: RAM's write is dropped midway and disk's goes on. A
/// waiter reading the fill through the store must still get the whole body (it was cut
/// where RAM stopped), and the leader must get its first bytes before the fill ends (it is
/// relayed: the store lets a reader follow only RAM's part as it comes).
@Suite struct ProxyTieredTests {
  /// 1 MiB in 64 chunks, each its own text so that a misplaced chunk shows.
  static let chunks = (0..<64).map { index in String(repeating: String(String(10_000 + index).suffix(4)), count: 4096) }
  static let body = chunks.joined()
  static let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/large", headers: ["Host": "example.test"])

  typealias Store = TieredStore<MemoryStore, DiskStore>

  /// An origin and the proxy on RAM (64 KiB objects at most) over disk, for `body`.
  static func withTieredProxy(
    _ origin: TestOrigin, _ body: (_ port: Int, _ store: Store) async throws -> Void
  ) async throws {
    var logger = Logger(label: "edge-cdn-test")
    logger.logLevel = .critical
    let originServer = try await HTTPServer(host: "127.0.0.1", port: 0, handler: origin, logger: logger)
    var configuration = ProxyConfiguration(
      origin: .init(host: "127.0.0.1", port: originServer.localAddress?.port ?? 0),
      listen: .init(host: "127.0.0.1", port: 0))
    configuration.originResponseTimeoutSeconds = 30
    configuration.cacheLockTimeoutMilliseconds = 30_000
    let folder = try TemporaryDirectory()
    let disk = try await DiskStore.open(
      configuration: DiskStoreConfiguration(
        path: folder.path, size: 64 << 20, regionSize: 4 << 20, fragmentSize: 64 << 10, maxObjectSize: 8 << 20,
        flushIntervalMilliseconds: 50))
    let store = Store(
      memory: try MemoryStore(configuration: .init(byteBudget: 8 << 20, maxObjectSize: 64 << 10)), disk: disk)
    let app = try await EdgeCDNApplication.start(configuration: configuration, store: store, logger: logger)
    let servers = [Task { try await originServer.run() }, Task { try await app.server.run() }]
    var failure: (any Error)?
    do { try await body(app.server.localAddress?.port ?? 0, store) } catch { failure = error }
    app.server.beginShutdown()
    originServer.beginShutdown()
    app.proxy.origin.shutdown()
    for server in servers { _ = await server.result }
    await store.shutdown()
    try await disk.close()
    if let failure { throw failure }
  }

  /// An origin sending `/large` with a Content-Length, slowly: 24 chunks of 16 KiB 250 ms
  /// apart (6 s), each one letter repeated (A, B, ...), so a letter shows a chunk.
  static func slowLetters() -> (TestOrigin, [String]) {
    let origin = TestOrigin()
    let chunks = (0..<24).map { String(repeating: Character(UnicodeScalar(UInt8(65 + $0 % 26))), count: 16 << 10) }
    origin.route(
      "/large",
      reply: OriginReply(
        headers: ["Cache-Control": "max-age=60", "Content-Length": "\(chunks.joined().utf8.count)"], chunks: chunks,
        chunkDelayMilliseconds: 250))
    return (origin, chunks)
  }

  /// Runs `body` against a slow fill of `/large` (`slowLetters`) through the tiered proxy,
  /// then waits for the fill to commit: the store closes after the test.
  static func withSlowFill(
    _ body: @escaping @Sendable (_ port: Int, _ origin: TestOrigin, _ chunks: [String]) async throws -> Void
  ) async throws {
    try await withTimeout(seconds: 150) {
      let (origin, chunks) = slowLetters()
      try await withTieredProxy(origin) { port, store in
        try await body(port, origin, chunks)
        try await waitForCommit(store)
      }
    }
  }

  /// Waits (bounded) for the fill of `/large` to commit on disk: the store closes after
  /// the test, and a fill still writing would write to a closed file.
  static func waitForCommit(_ store: Store) async throws {
    let key = RequestKey.of(head)
    for _ in 0..<3000 {
      if try await store.disk?.lookup(key) != nil { return }
      try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("the fill did not commit within 30 s")
  }

  @Test(arguments: [true, false])
  func aMissLargerThanRAMReachesTheClientWhole(withContentLength: Bool) async throws {
    try await withTimeout(seconds: 150) {
      let origin = TestOrigin()
      var headers: HTTPHeaders = ["Cache-Control": "max-age=60"]
      if withContentLength { headers.add(name: "Content-Length", value: "\(Self.body.utf8.count)") }
      // Held a while, so that a second request waits on the cache lock: a waiter reads the
      // write through the store (the handoff) whether or not the leader reads a relay.
      origin.route("/large", reply: OriginReply(headers: headers, chunks: Self.chunks, delayMilliseconds: 3000))
      try await Self.withTieredProxy(origin) { port, store in
        let client = OriginClient(
          configuration: .init(host: "127.0.0.1", port: port), group: MultiThreadedEventLoopGroup.singleton)
        defer { client.shutdown() }
        func get() async throws -> (status: String, body: String) {
          let response = try await client.send(Self.head)
          var body = ""
          while let chunk = try await response.body.read() { body += String(buffer: chunk) }
          return (response.head.headers.first(name: "cache-status") ?? "", body)
        }
        async let leader = get()
        // The waiter asks once the leader's fetch is under way (the origin holds it 3 s).
        for _ in 0..<1000 where origin.count("/large") == 0 { try await Task.sleep(for: .milliseconds(10)) }
        async let waiter = get()
        let (first, collapsed) = try await (leader, waiter)
        let second = try await get()
        let key = RequestKey.of(Self.head)
        #expect(first.body.utf8.count == Self.body.utf8.count, "the miss's body: \(first.status)")
        #expect(first.body == Self.body)
        #expect(first.status.contains("stored"), "\(first.status)")
        #expect(collapsed.body == Self.body, "the waiter's body: \(collapsed.status)")
        #expect(collapsed.status.contains("collapsed"), "\(collapsed.status)")
        #expect(second.body == Self.body)
        #expect(second.status.contains("hit"), "from disk: \(second.status)")
        #expect(try await store.memoryTier.lookup(key) == nil, "too large for RAM")
        #expect(try await store.disk?.lookup(key) != nil)
        #expect(origin.count("/large") == 1)
      }
    }
  }

  /// A range asked by the leader of a fill past RAM's limit (relayed) is answered once its
  /// bytes went by, not after the whole fill.
  @Test func aRangeLeaderOfARelayedFillDoesNotWaitForTheRest() async throws {
    try await Self.withSlowFill { port, origin, chunks in
      let client = try await RawClient(port: port)
      // Bytes 100 000 to 100 009: in chunk 6 ("G"), 1.5 s into the origin's 6 s.
      try await client.send("GET /large HTTP/1.1\r\nHost: example.test\r\nRange: bytes=100000-100009\r\n\r\n")
      #expect(try await client.waitFor(milliseconds: 8000) { $0.text.hasSuffix("GGGGGGGGGG") })
      #expect(client.text.hasPrefix("HTTP/1.1 206"), "\(client.text.prefix(200))")
      #expect(origin.chunksWritten.withLock { $0 } < chunks.count, "answered before the origin's end")
      await client.close()
    }
  }

  /// The leader of a fill with a Content-Length past RAM's limit gets its first bytes while
  /// the origin still sends (it waited for the whole body to reach disk).
  @Test func theLeaderOfAFillPastRAMsLimitGetsBytesBeforeTheEnd() async throws {
    try await Self.withSlowFill { port, origin, chunks in
      let client = try await RawClient(port: port)
      try await client.send("GET /large HTTP/1.1\r\nHost: example.test\r\n\r\n")
      // Chunk 10 ("K"), past RAM's 64 KiB (four chunks).
      #expect(try await client.waitFor(milliseconds: 8000) { $0.text.contains("KKKKKKKK") })
      #expect(origin.chunksWritten.withLock { $0 } < chunks.count, "the origin was still sending")
      await client.close()
    }
  }

  /// A request that comes during that fill, once the leader has released the cache lock,
  /// finds the write in progress (a hit on it) and reads it through the store: from RAM
  /// while RAM has it (it was then cut where RAM stopped), or from disk's write by key once
  /// it left RAM (it then missed and fetched the object again), following disk's 64 KiB
  /// fragments as disk appends them.
  @Test func aRequestDuringAFillPastRAMsLimitGetsBytesBeforeTheEnd() async throws {
    try await Self.withSlowFill { port, origin, chunks in
      let leader = try await RawClient(port: port)
      try await leader.send("GET /large HTTP/1.1\r\nHost: example.test\r\n\r\n")
      #expect(try await leader.waitFor(milliseconds: 8000) { $0.text.contains("AAAAAAAA") })
      let during = try await RawClient(port: port)
      try await during.send("GET /large HTTP/1.1\r\nHost: example.test\r\n\r\n")
      // Chunk 10 ("K"): in disk's third fragment, past RAM's 64 KiB (four chunks).
      #expect(try await during.waitFor(milliseconds: 8000) { $0.text.contains("KKKKKKKK") })
      #expect(origin.chunksWritten.withLock { $0 } < chunks.count, "the origin was still sending")
      #expect(during.text.contains("edge-cdn; hit"), "a hit on the write: \(during.text.prefix(300))")
      #expect(try await during.waitFor(milliseconds: 20000) { $0.text.hasSuffix(chunks.joined()) })
      #expect(origin.count("/large") == 1)
      await leader.close()
      await during.close()
    }
  }
}

/// Cacheable responses without Content-Length: the fill relays the body to the request that
/// fetched it (RelayedHitHandler) as it stores it.
@Suite struct ProxyRelayedFillTests {
  static func chunks(_ count: Int, size: Int) -> [String] {
    (0..<count).map { index in String(repeating: String(String(10_000 + index).suffix(4)), count: size / 4) }
  }

  /// Larger than the store takes: the store's write fails midway, the response must not.
  @Test func aChunkedBodyLargerThanTheStoreReachesTheClientWhole() async throws {
    // 12 MiB in 192 chunks of 64 KiB; the harness's RAM store takes objects up to 8 MiB.
    let chunks = Self.chunks(192, size: 64 << 10)
    let body = chunks.joined()
    try await ProxyHarness.run { h in
      h.origin.route("/chunked", reply: OriginReply(headers: ["Cache-Control": "max-age=60"], chunks: chunks))
      let response = try await h.get("/chunked")
      #expect(response.status == 200)
      #expect(response.body.utf8.count == body.utf8.count, "\(response.cacheStatus)")
      #expect(response.body == body)
      #expect(h.store.objectCount == 0, "too large to keep")
      #expect(try await h.get("/chunked").body == body, "fetched again, whole again")
      #expect(h.origin.count("/chunked") == 2)
    }
  }

  /// A chunked body past `proxy.cache.maxObjectSize` is not kept, as one whose Content-Length
  /// says so is not, although the store could take it; the client gets it whole.
  @Test func aChunkedBodyPastTheMaximumObjectSizeIsNotKept() async throws {
    let chunks = Self.chunks(8, size: 64 << 10)
    try await ProxyHarness.run(configure: { $0.maxCacheableObjectBytes = 256 << 10 }) { h in
      h.origin.route("/big", reply: OriginReply(headers: ["Cache-Control": "max-age=60"], chunks: chunks))
      for _ in 0..<2 {
        let response = try await h.get("/big")
        #expect(response.body == chunks.joined())
      }
      #expect(h.store.objectCount == 0)
      #expect(h.origin.count("/big") == 2)
    }
  }

  /// The relay streams: the first bytes reach the client while the origin is still sending.
  @Test(arguments: [false, true])
  func theLeaderGetsTheFirstBytesBeforeTheOriginEnds(withLength: Bool) async throws {
    // 40 KiB, under the 64 KiB a response gathers, so gathered it would reach the client
    // only at the origin's end; 40 chunks 250 ms apart: the origin sends for 10 s, so a
    // loaded machine's stall between the client's read and the check cannot pass for it.
    let chunks = Self.chunks(40, size: 1024)
    var headers: HTTPHeaders = ["Cache-Control": "max-age=60"]
    if withLength { headers.add(name: "Content-Length", value: "\(40 * 1024)") }
    try await ProxyHarness.run { [headers] h in
      h.origin.route(
        "/trickle", reply: OriginReply(headers: headers, chunks: chunks, chunkDelayMilliseconds: 250))
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      try await client.send("GET /trickle HTTP/1.1\r\nHost: example.test\r\n\r\n")
      // Chunk 1's text ("0001" repeated), which chunked framing could split but not hide
      // (chunk 0 is "0000" repeated, the framing's sizes are hex).
      #expect(try await client.waitFor(milliseconds: 8000) { $0.text.contains("00010001") })
      #expect(h.origin.chunksWritten.withLock { $0 } < chunks.count, "the origin was still sending")
      await client.close()
    }
  }

  /// A pass-through that pauses (a long poll, server-sent events) sends each chunk at once:
  /// nothing waits for its end, so no chunk is held back for it.
  @Test func aPausingPassThroughSendsEachChunkAtOnce() async throws {
    let chunks = ["event: one\n\n", "event: two\n\n"]
    try await ProxyHarness.run { h in
      h.origin.route(
        "/events",
        reply: OriginReply(headers: ["Cache-Control": "no-store"], chunks: chunks, chunkDelayMilliseconds: 4000))
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      try await client.send("GET /events HTTP/1.1\r\nHost: example.test\r\n\r\n")
      #expect(try await client.waitFor(milliseconds: 3000) { $0.text.contains("event: one") })
      #expect(!client.text.contains("event: two"), "the first event came before the second was sent")
      await client.close()
    }
  }

  /// A leader that goes away mid-body stops taking the relay; the fill goes on and commits.
  @Test func aLeaderLeavingMidBodyDoesNotStopTheFill() async throws {
    let chunks = Self.chunks(20, size: 1000)
    try await ProxyHarness.run { h in
      h.origin.route(
        "/leave",
        reply: OriginReply(headers: ["Cache-Control": "max-age=60"], chunks: chunks, chunkDelayMilliseconds: 100))
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      try await client.send("GET /leave HTTP/1.1\r\nHost: example.test\r\n\r\n")
      #expect(try await client.waitFor { $0.text.contains(chunks[0]) })
      await client.close()
      try await h.eventually("the fill to finish") { h.store.objectCount == 1 }
      let hit = try await h.get("/leave")
      #expect(hit.cacheStatus.contains("hit"), "\(hit.cacheStatus)")
      #expect(hit.body == chunks.joined())
      #expect(h.origin.count("/leave") == 1)
    }
  }

  /// A leader that wants none of the body (its conditional request matches: 304) lets the
  /// relay go at its end; the fill, which waits for a reader once the relay is full, then
  /// commits. Before, the response's end waited for the fill and the fill for the leader.
  @Test func aConditionalLeaderOfAChunkedFillGets304AndTheFillCommits() async throws {
    let chunks = Self.chunks(16, size: 16 << 10)
    try await ProxyHarness.run(timeout: 60) { h in
      h.origin.route(
        "/etag", reply: OriginReply(headers: ["Cache-Control": "max-age=60", "ETag": "\"e1\""], chunks: chunks))
      let conditional = try await h.get("/etag", ["If-None-Match": "\"e1\""])
      #expect(conditional.status == 304, "\(conditional.cacheStatus)")
      let hit = try await h.get("/etag")
      #expect(hit.body == chunks.joined())
      #expect(hit.cacheStatus.contains("hit"), "\(hit.cacheStatus)")
      #expect(h.origin.count("/etag") == 1)
    }
  }

  /// A HEAD on a stale entry revalidates; the origin answers with a new chunked body, which
  /// the HEAD's response does not read: it must answer, and the fill commit.
  @Test func aHeadRevalidatingAStaleEntryWithAChunkedBodyAnswers() async throws {
    let chunks = Self.chunks(16, size: 16 << 10)
    try await ProxyHarness.run(timeout: 60) { h in
      h.origin.route("/stale") { _, n in
        OriginReply(headers: ["Cache-Control": "max-age=0", "ETag": "\"v\(n)\""], chunks: chunks)
      }
      #expect(try await h.get("/stale").body == chunks.joined())
      let head = try await h.request("/stale", method: .HEAD)
      #expect(head.status == 200 && head.body.isEmpty, "\(head.cacheStatus)")
      #expect(h.origin.count("/stale") == 2, "the HEAD revalidated")
      #expect(try await h.get("/stale").body == chunks.joined())
    }
  }

  /// A HEAD that revalidates gets its head while the new body is still coming: a response
  /// with no body does not wait for the fill it leads (it waited for all of it).
  @Test func aHeadLeaderIsAnsweredBeforeItsFillEnds() async throws {
    let chunks = Self.chunks(20, size: 4096)
    try await ProxyHarness.run(timeout: 60) { h in
      h.origin.route("/slow-stale") { _, n in
        OriginReply(
          headers: ["Cache-Control": "max-age=0", "ETag": "\"v\(n)\""], chunks: chunks,
          chunkDelayMilliseconds: n == 1 ? 0 : 400)
      }
      _ = try await h.get("/slow-stale")
      let before = h.origin.chunksWritten.withLock { $0 }
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      try await client.send("HEAD /slow-stale HTTP/1.1\r\nHost: example.test\r\n\r\n")
      #expect(try await client.waitFor(milliseconds: 6000) { $0.text.hasPrefix("HTTP/1.1 200") })
      #expect(
        h.origin.chunksWritten.withLock { $0 } - before < chunks.count, "the head came before the new body's end")
      await client.close()
    }
  }

  /// Waiters read the stored write while the leader reads the relay: one origin fetch.
  @Test func coalescedWaitersOfAChunkedFillGetTheObject() async throws {
    let chunks = Self.chunks(16, size: 16 << 10)
    let body = chunks.joined()
    try await ProxyHarness.run { h in
      h.origin.route("/together") { _, _ in
        OriginReply(
          headers: ["Cache-Control": "max-age=60"], chunks: chunks, delayMilliseconds: 1500, chunkDelayMilliseconds: 10)
      }
      let responses = try await h.getConcurrently("/together", count: 5)
      #expect(responses.count == 5)
      #expect(responses.allSatisfy { $0.status == 200 && $0.body == body })
      #expect(h.origin.count("/together") == 1)
      #expect(responses.contains { $0.cacheStatus.contains("collapsed") }, "\(responses.map(\.cacheStatus))")
    }
  }
}
