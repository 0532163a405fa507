import EdgeCDNStore
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Prometheus
import Testing

@testable import EdgeCDN

/// The event-loop fast path (`FreshHitResponder` + `ImmediateResponseHandler`): what it
/// answers, what it leaves to the async path, and that the wire behaviour is the same.
@Suite struct ProxyImmediateHitTests {
  func proxyPort(_ h: ProxyHarness) -> Int { h.app.server.localAddress?.port ?? 0 }

  func head(_ uri: String, method: HTTPMethod = .GET, _ headers: HTTPHeaders = [:]) -> HTTPRequestHead {
    var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
    head.headers = headers
    if !head.headers.contains(name: "host") { head.headers.add(name: "Host", value: "example.test") }
    return head
  }

  func immediate(_ h: ProxyHarness, _ head: HTTPRequestHead, keepAlive: Bool = true) throws -> ImmediateResponse? {
    let responder = try #require(h.app.proxy.immediateResponder)
    return responder.immediateResponse(to: head, keepAlive: keepAlive)
  }

  func bodyText(_ response: ImmediateResponse) -> String {
    response.parsed.body
  }

  @Test func freshHitIsAnsweredWithAgeCacheStatusAndBody() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/a", reply: .text("hello", ["Cache-Control": "max-age=60", "Age": "3"]))
      #expect(try immediate(h, head("/a")) == nil, "nothing stored yet")
      let stored = ContinuousClock.now
      _ = try await h.get("/a")
      let hitsBefore = h.app.proxy.stats[.hits]
      let response = try #require(try immediate(h, head("/a")))
      // Age is the origin's 3 s plus the time the entry has been stored, which on a loaded
      // machine can be many seconds; rounded up once by the whole second.
      let storedSeconds = Int((ContinuousClock.now - stored).components.seconds) + 1
      #expect(response.parsed.status == .ok)
      #expect(bodyText(response) == "hello")
      #expect(response.keepAlive)
      let age = Int(response.parsed.headers.first(name: "age") ?? "") ?? -1
      #expect((3...(4 + storedSeconds)).contains(age), "and 1 s more for the origin Date's rounding")
      let cacheStatus = response.parsed.headers.first(name: "cache-status") ?? ""
      #expect(cacheStatus.hasPrefix("edge-cdn; hit; ttl="))
      let ttl = Int(cacheStatus.dropFirst("edge-cdn; hit; ttl=".count)) ?? -1
      // One second less when the origin's Date (whole seconds) makes the apparent age 1 s.
      #expect(((56 - storedSeconds)...57).contains(ttl))
      #expect(response.parsed.headers.first(name: "content-length") == "5")
      #expect(!response.parsed.headers.contains(name: "connection"))
      #expect(h.app.proxy.stats[.hits] == hitsBefore + 1)
      // Through the socket, a hit looks the same.
      let hit = try await h.get("/a")
      #expect(hit.body == "hello")
      #expect(hit.cacheStatus.hasPrefix("edge-cdn; hit; ttl="))
      #expect(hit["age"] != nil)
      #expect(h.app.proxy.stats[.hits] == hitsBefore + 2)
      #expect(h.origin.count("/a") == 1)
    }
  }

  @Test func hostIsMatchedCaseInsensitively() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/h", reply: .text("x", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/h", ["Host": "Example.TEST"])
      #expect(try immediate(h, head("/h", ["Host": "example.test"])) != nil)
      #expect(try immediate(h, head("/h", ["hOsT": "EXAMPLE.test"])) != nil)
      #expect(try immediate(h, head("/h", ["Host": "other.test"])) == nil)
    }
  }

  @Test func headIsAnsweredWithoutBody() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/h", reply: .text("body!", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/h")
      let response = try #require(try immediate(h, head("/h", method: .HEAD)))
      #expect(response.body.isEmpty)
      #expect(response.parsed.headers.first(name: "content-length") == "5")
      // On the wire: HEAD then GET on one connection; the GET's body follows the HEAD's head.
      let client = try await RawClient(port: proxyPort(h))
      try await client.send(
        "HEAD /h HTTP/1.1\r\nHost: example.test\r\n\r\nGET /h HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"
      )
      #expect(try await client.waitFor { $0.isClosed })
      let text = client.text
      #expect(text.ranges(of: "HTTP/1.1 200").count == 2)
      #expect(text.ranges(of: "body!").count == 1)
      #expect(text.hasSuffix("body!"))
      await client.close()
    }
  }

  @Test func requestsThatNeedTheFullPathAreDeclined() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/d", reply: .text("0123456789", ["Cache-Control": "max-age=60", "ETag": "\"v1\""]))
      _ = try await h.get("/d")
      #expect(try immediate(h, head("/d")) != nil)
      let hitsBefore = h.app.proxy.stats[.hits]
      for (name, value) in [
        ("Range", "bytes=0-3"), ("If-None-Match", "\"v1\""), ("if-modified-since", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ("Cache-Control", "no-cache"), ("Pragma", "no-cache"), ("Authorization", "Bearer x"),
      ] {
        #expect(try immediate(h, head("/d", [name: value])) == nil, "\(name)")
      }
      #expect(try immediate(h, head("/d", method: .POST)) == nil)
      #expect(h.app.proxy.stats[.hits] == hitsBefore, "declined requests count nothing")
      // The async path still answers them as before.
      let range = try await h.get("/d", ["Range": "bytes=0-3"])
      #expect(range.status == 206)
      #expect(range.body == "0123")
      let conditional = try await h.get("/d", ["If-None-Match": "\"v1\""])
      #expect(conditional.status == 304)
      #expect(h.origin.count("/d") == 1)
    }
  }

  @Test func largerBodiesThanTheLimitTakeTheAsyncPath() async throws {
    try await ProxyHarness.run(configure: { $0.immediateHitMaxBodyBytes = 4 }) { h in
      h.origin.route("/big", reply: .text("12345", ["Cache-Control": "max-age=60"]))
      h.origin.route("/small", reply: .text("1234", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/big")
      _ = try await h.get("/small")
      #expect(try immediate(h, head("/big")) == nil)
      #expect(try immediate(h, head("/small")) != nil)
      #expect(try await h.get("/big").cacheStatus.contains("hit"))
    }
  }

  @Test func disabledBySetting() async throws {
    try await ProxyHarness.run(configure: { $0.immediateHitMaxBodyBytes = 0 }) { h in
      #expect(h.app.proxy.immediateResponder == nil)
      h.origin.route("/a", reply: .text("a", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/a")
      #expect(try await h.get("/a").cacheStatus.contains("hit"))
    }
  }

  @Test func staleEntryGoesToTheAsyncPath() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/s") { _, n in .text("v\(n)", ["Cache-Control": "max-age=60"]) }
      // A stale entry written straight into the store: no sleeping, whatever the machine's load.
      try await h.store("/s", body: "v0", fields: [.init("Content-Length", "2")], secondsAgo: 65)
      let hitsBefore = h.app.proxy.stats[.hits]
      #expect(try immediate(h, head("/s")) == nil)
      #expect(h.app.proxy.stats[.hits] == hitsBefore, "a declined stale entry counts nothing")
      let refreshed = try await h.get("/s")
      #expect(refreshed.body == "v1")
      #expect(refreshed.cacheStatus.contains("fwd=stale"))
      #expect(h.origin.count("/s") == 1)
      #expect(try immediate(h, head("/s")).map(bodyText) == "v1")
    }
  }

  @Test func varyEntriesStillWork() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/vary") { request, _ in
        let lang = request.head.headers.first(name: "accept-language") ?? "none"
        return .text("lang=\(lang)", ["Cache-Control": "max-age=60", "Vary": "Accept-Language"])
      }
      _ = try await h.get("/vary", ["Accept-Language": "en"])
      _ = try await h.get("/vary", ["Accept-Language": "fr"])
      // The primary key holds the Vary index: the fast path leaves it to the two-step lookup.
      #expect(try immediate(h, head("/vary", ["Accept-Language": "en"])) == nil)
      let en = try await h.get("/vary", ["Accept-Language": "en"])
      #expect(en.body == "lang=en")
      #expect(en.cacheStatus.contains("hit"))
      let fr = try await h.get("/vary", ["Accept-Language": "fr"])
      #expect(fr.body == "lang=fr")
      #expect(h.origin.count("/vary") == 2)
    }
  }

  @Test func pipelinedFastHitsAndMissesComeBackInOrder() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/hot", reply: .text("hot!", ["Cache-Control": "max-age=60"]))
      for name in ["m1", "m2", "m3"] {
        h.origin.route("/\(name)") { _, _ in
          var reply = OriginReply.text("<\(name)>", ["Cache-Control": "no-store"])
          reply.delayMilliseconds = 30
          return reply
        }
      }
      _ = try await h.get("/hot")
      let hitsBefore = h.app.proxy.stats[.hits]
      let client = try await RawClient(port: proxyPort(h))
      let order = ["/hot", "/m1", "/hot", "/hot", "/m2", "/m3", "/hot"]
      var requests = ""
      for (index, path) in order.enumerated() {
        let close = index == order.count - 1 ? "Connection: close\r\n" : ""
        requests += "GET \(path) HTTP/1.1\r\nHost: example.test\r\n\(close)\r\n"
      }
      try await client.send(requests)
      #expect(try await client.waitFor(milliseconds: 10_000) { $0.isClosed })
      let text = client.text
      #expect(text.ranges(of: "HTTP/1.1 200").count == order.count)
      let bodies = ["hot!", "<m1>", "<m2>", "<m3>"]
      var seen: [String] = []
      var rest = Substring(text)
      while let next = bodies.compactMap({ body in rest.firstRange(of: body).map { (body, $0) } })
        .min(by: { $0.1.lowerBound < $1.1.lowerBound })
      {
        seen.append(next.0)
        rest = rest[next.1.upperBound...]
      }
      #expect(seen == ["hot!", "<m1>", "hot!", "hot!", "<m2>", "<m3>", "hot!"])
      #expect(h.app.proxy.stats[.hits] == hitsBefore + 4)
    }
  }

  @Test func keepAliveAndConnectionClose() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/k", reply: .text("kk", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/k")
      let client = try await RawClient(port: proxyPort(h))
      try await client.send("GET /k HTTP/1.1\r\nHost: example.test\r\n\r\n")
      #expect(try await client.waitFor { $0.text.hasSuffix("kk") })
      try await client.send("GET /k HTTP/1.1\r\nHost: example.test\r\n\r\n")
      #expect(try await client.waitFor { $0.text.ranges(of: "kk").count == 2 })
      #expect(!client.isClosed)
      #expect(!client.text.lowercased().contains("connection:"))
      try await client.send("GET /k HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
      #expect(try await client.waitFor { $0.isClosed })
      #expect(client.text.ranges(of: "kk").count == 3)
      #expect(client.text.lowercased().contains("connection: close"))

      // HTTP/1.0: closed unless asked to keep alive, and then told so.
      let old = try await RawClient(port: proxyPort(h))
      try await old.send("GET /k HTTP/1.0\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n")
      #expect(try await old.waitFor { $0.text.hasSuffix("kk") })
      #expect(old.text.lowercased().contains("connection: keep-alive"))
      #expect(!old.isClosed)
      try await old.send("GET /k HTTP/1.0\r\nHost: example.test\r\n\r\n")
      #expect(try await old.waitFor { $0.isClosed })
      #expect(old.text.ranges(of: "kk").count == 2)
      #expect(old.text.lowercased().contains("connection: close"))
    }
  }

  @Test func shutdownTurnsKeepAliveOff() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/k", reply: .text("kk", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/k")
      let response = try #require(try immediate(h, head("/k"), keepAlive: false))
      #expect(!response.keepAlive)
      #expect(response.parsed.headers.first(name: "connection") == "close")
    }
  }

  /// What NIOHTTP1 writes for a response given as fields and body.
  func nioEncoded(_ response: ImmediateResponse) throws -> String {
    guard case .fields(let head) = response.head else { return "" }
    let channel = EmbeddedChannel(handler: HTTPResponseEncoder())
    try channel.writeOutbound(HTTPServerResponsePart.head(head))
    for chunk in response.body { try channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(chunk))) }
    try channel.writeOutbound(HTTPServerResponsePart.end(nil))
    var bytes: [UInt8] = []
    while let data = try channel.readOutbound(as: IOData.self) {
      if case .byteBuffer(let buffer) = data { bytes.append(contentsOf: buffer.readableBytesView) }
    }
    _ = try channel.finish()
    return String(decoding: bytes, as: UTF8.self)
  }

  func wireText(_ response: ImmediateResponse) -> String {
    guard case .encoded(let bytes) = response.head else { return "" }
    return String(buffer: bytes) + response.body.map { String(buffer: $0) }.joined()
      + ((try? response.fileBody?.read()).map { String(buffer: $0) } ?? "")
  }

  @Test(arguments: [
    (HTTPMethod.GET, HTTPVersion.http1_1, true), (.HEAD, .http1_1, true), (.GET, .http1_1, false),
    (.GET, .http1_0, true), (.GET, .http1_0, false),
  ])
  func encodedHitIsByteForByteWhatNIOHTTP1Sends(
    method: HTTPMethod, version: HTTPVersion, keepAlive: Bool
  )
    async throws
  {
    try await ProxyHarness.run { h in
      h.origin.route("/b", reply: .text("byte-exact", ["Cache-Control": "max-age=60", "ETag": "\"e\"", "Age": "2"]))
      _ = try await h.get("/b")
      let viaFields = FreshHitResponder(
        store: h.store, counters: ProxyCounters(), maxBodyBytes: 1 << 20,
        cacheName: h.app.proxy.configuration.cacheName, logger: Logger(label: "test"), accessLogAtInfo: false,
        encodesHeads: false)
      var request = head("/b", method: method)
      request.version = version
      // Age and ttl are in seconds: both answers within one second compare exactly.
      var matched = false
      for _ in 0..<3 where !matched {
        let encoded = try #require(try immediate(h, request, keepAlive: keepAlive))
        let fields = try #require(viaFields.immediateResponse(to: request, keepAlive: keepAlive))
        guard case .encoded = encoded.head else {
          Issue.record("expected an encoded head")
          return
        }
        #expect(encoded.keepAlive == fields.keepAlive)
        matched = wireText(encoded) == (try nioEncoded(fields))
      }
      #expect(matched)
    }
  }

  @Test func theSerialisedHeadIsKeptPerStoredVersion() async throws {
    try await ProxyHarness.run { h in
      try await h.store("/v", body: "one", fields: [.init("Content-Length", "3"), .init("X-Version", "1")])
      let key = CachingProxy<MemoryStore>.cacheKey(for: head("/v"))
      func kept() -> ByteBuffer? {
        h.store.immediateLookup(key, maxBodyBytes: 1 << 20, readsBody: false) { _, _, _ in true }?
          .memo?.memo(as: EncodedResponseHead.self)?.bytes
      }
      #expect(kept() == nil, "nothing serialised before the first hit")
      let first = try #require(try immediate(h, head("/v")))
      #expect(first.parsed.headers.first(name: "x-version") == "1")
      #expect(first.parsed.body == "one")
      #expect(kept().map { String(buffer: $0) }?.contains("X-Version: 1\r\n") == true)
      // A new version of the object: its own head, never the old one's.
      try await h.store("/v", body: "two!", fields: [.init("Content-Length", "4"), .init("X-Version", "2")])
      #expect(kept() == nil)
      let second = try #require(try immediate(h, head("/v")))
      #expect(second.parsed.headers.first(name: "x-version") == "2")
      #expect(second.parsed.body == "two!")
      #expect(kept().map { String(buffer: $0) }?.contains("X-Version: 2\r\n") == true)
    }
  }

  @Test func ageIsComputedPerHitOverTheKeptHead() async throws {
    try await ProxyHarness.run { h in
      try await h.store(
        "/age", body: "aged", fields: [.init("Content-Length", "4"), .init("Age", "3")], secondsAgo: 10,
        initialAge: 3)
      let stored = ContinuousClock.now
      for _ in 0..<2 {
        let response = try #require(try immediate(h, head("/age")))
        guard case .encoded = response.head else {
          Issue.record("expected an encoded head")
          return
        }
        let ages = response.parsed.headers[canonicalForm: "age"]
        #expect(ages.count == 1, "the stored Age is replaced, not repeated")
        // Bounded by the time since the entry was stored, many seconds on a loaded machine.
        let storedSeconds = Int((ContinuousClock.now - stored).components.seconds) + 1
        #expect((13...(13 + storedSeconds)).contains(Int(ages.first ?? "") ?? -1), "initial age 3 + 10 s resident")
        #expect(response.parsed.body == "aged")
      }
    }
  }

  @Test func headsThatCannotBeSerialisedTakeTheFieldsPath() async throws {
    try await ProxyHarness.run { h in
      // A status without body: NIOHTTP1 frames it, so it is not pre-encoded.
      try await h.store("/nobody", status: 204, body: "", fields: [.init("X-A", "1")])
      let response = try #require(try immediate(h, head("/nobody")))
      guard case .fields = response.head else {
        Issue.record("expected a fields head")
        return
      }
      let hit = try await h.get("/nobody")
      #expect(hit.status == 204)
      #expect(hit.headers["x-a"] == ["1"])
    }
  }

  /// An origin that sent its body chunked (or until close) leaves a head without
  /// Content-Length; the stored body is complete, so a hit sends its length, pre-encoded.
  @Test func aStoredHeadWithoutContentLengthIsSentWithOne() async throws {
    try await ProxyHarness.run { h in
      try await h.store("/nolen", body: "abc", fields: [.init("X-A", "1")])
      let response = try #require(try immediate(h, head("/nolen")))
      guard case .encoded = response.head else {
        Issue.record("expected an encoded head")
        return
      }
      #expect(wireText(response).contains("\r\nX-A: 1\r\nContent-Length: 3\r\n"))
      let hit = try await h.get("/nolen")
      #expect(hit.body == "abc")
      #expect(hit.headers["content-length"] == ["3"])
      #expect(hit.headers["transfer-encoding"].isEmpty)
    }
  }

  /// A plain request as `WireResponder` hands it to the responder.
  func wire(_ uri: String, method: String = "GET") throws -> WireRequest {
    let bytes = ByteBuffer(string: "\(method) \(uri) HTTP/1.1\r\nHost: example.test\r\n\r\n")
    let scan = bytes.withUnsafeReadableBytes {
      WireRequestScan.scan($0, maxRequestLineBytes: 1 << 10, maxHeaderBytes: 1 << 10)
    }
    guard case .plain(let plain, _) = scan else { throw WireScanFailed() }
    return WireRequest(plain, bytes: bytes)
  }

  struct WireScanFailed: Error {}

  /// Hits are counted per event-loop thread (`StripedCounters`) and summed when read:
  /// hits on two connections at once (one per event loop, as the server hands them out
  /// in turn) add up exactly, the hit latency samples too.
  @Test func hitCountsAreExactAfterHitsOnTwoConnections() async throws {
    let registry = PrometheusCollectorRegistry()
    let proxyMetrics = ProxyMetrics(factory: ProxyLatencyMetricsTests.factory(registry), fastHitSampleInterval: 1)
    try await ProxyHarness.run(proxyMetrics: proxyMetrics) { h in
      try await h.store("/hot", body: "hot!", fields: [.init("Content-Length", "4")])
      let hitsBefore = h.app.proxy.stats[.hits]
      let perConnection = 200
      let request = "GET /hot HTTP/1.1\r\nHost: example.test\r\n\r\n"
      let last = "GET /hot HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"
      let requests = String(repeating: request, count: perConnection - 1) + last
      let first = try await RawClient(port: proxyPort(h))
      let second = try await RawClient(port: proxyPort(h))
      async let sentFirst: Void = first.send(requests)
      async let sentSecond: Void = second.send(requests)
      _ = try await (sentFirst, sentSecond)
      for client in [first, second] {
        #expect(try await client.waitFor(milliseconds: 20_000) { $0.isClosed })
        #expect(client.text.ranges(of: "hot!").count == perConnection)
        await client.close()
      }
      #expect(h.app.proxy.stats[.hits] == hitsBefore + 2 * perConnection)
      let text = registry.emitToString()
      let hits = ProxyLatencyMetricsTests.sample(
        text, "\(ProxyMetrics.headDurationLabel)_count", #"outcome="hit""#)
      #expect(hits == Double(2 * perConnection), "every event-loop hit timed at interval 1")
    }
  }

  /// What `WireResponder` asks, through the proxy's responder as the server gets it
  /// (wrapped for latency metrics): a pre-encoded hit, or nil with nothing counted.
  @Test func theServersResponderAnswersPreEncodedOnlyWhenItCan() async throws {
    try await ProxyHarness.run { h in
      try await h.store("/len", body: "abc", fields: [.init("Content-Length", "3")])
      try await h.store("/nobody", status: 204, body: "", fields: [.init("X-A", "1")])
      let responder = try #require(h.app.proxy.immediateResponder)
      var memo = ImmediateConnectionMemo()
      let hitsBefore = h.app.proxy.stats[.hits]
      let hit = try #require(responder.wireResponse(to: try wire("/len"), keepAlive: true, connection: &memo))
      #expect(wireText(hit).hasSuffix("\r\n\r\nabc"))
      #expect(h.app.proxy.stats[.hits] == hitsBefore + 1)
      memo.answerableBehind = false
      #expect(responder.wireResponse(to: try wire("/nobody"), keepAlive: true, connection: &memo) == nil)
      #expect(memo.answerableBehind, "a hit answered behind the pipelining handler")
      memo.answerableBehind = false
      #expect(responder.wireResponse(to: try wire("/absent"), keepAlive: true, connection: &memo) == nil)
      #expect(!memo.answerableBehind, "a miss: nothing on the event loop answers it")
      #expect(h.app.proxy.stats[.hits] == hitsBefore + 1, "a decline counts nothing")
      // Through the socket both are hits, the second by the handler behind the pipelining one.
      #expect(try await h.get("/len").body == "abc")
      #expect(try await h.get("/nobody").status == 204)
      #expect(h.app.proxy.stats[.hits] == hitsBefore + 3)
    }
  }

  /// Counts the store's answers, which are what counts a hit and touches eviction.
  struct CountingLookup: ImmediateLookup {
    let base: MemoryStore
    let answers = Counter()

    final class Counter: @unchecked Sendable {
      var value = 0
    }

    func immediateServe(
      _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
      accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?, _ kept: Unmanaged<AnyObject>?) -> Bool,
      serve: (_ body: [ByteBuffer], _ file: FileBody?) -> Void
    ) -> Bool {
      let served = base.immediateServe(
        key, maxBodyBytes: maxBodyBytes, readsBody: readsBody, accept: accept, serve: serve)
      if served { answers.value += 1 }
      return served
    }
  }

  /// A hit whose head cannot be pre-encoded is declined by the wire path before the store
  /// counts it, so the path behind counts it once; also on its first hit, when the verdict
  /// is not kept yet.
  @Test func aHeadThatCannotBeSerialisedIsLookedUpOnce() async throws {
    try await ProxyHarness.run { h in
      try await h.store("/nobody", status: 204, body: "", fields: [.init("X-A", "1")])
      let lookup = CountingLookup(base: h.store)
      let responder = FreshHitResponder(
        store: lookup, counters: ProxyCounters(), maxBodyBytes: 1 << 20, cacheName: "edge", logger: Logger(label: "t"),
        accessLogAtInfo: false)
      var memo = ImmediateConnectionMemo()
      for round in 1...2 {
        #expect(responder.wireResponse(to: try wire("/nobody"), keepAlive: true, connection: &memo) == nil)
        #expect(lookup.answers.value == round - 1, "a declined wire answer is no store hit")
        let fields = try #require(responder.immediateResponse(to: head("/nobody"), keepAlive: true, connection: &memo))
        guard case .fields = fields.head else {
          Issue.record("expected a fields head")
          return
        }
        #expect(lookup.answers.value == round)
      }
    }
  }

  @Test func largeBodiesFollowTheHeadUncopied() async throws {
    try await ProxyHarness.run { h in
      let big = String(repeating: "0123456789abcdef", count: 2048)  // 32 KiB
      h.origin.route("/big", reply: .text(big, ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/big")
      let response = try #require(try immediate(h, head("/big")))
      guard case .encoded(let bytes) = response.head else {
        Issue.record("expected an encoded head")
        return
      }
      #expect(String(buffer: bytes).hasSuffix("\r\n\r\n"), "the head only")
      #expect(response.body.reduce(0) { $0 + $1.readableBytes } == big.utf8.count)
      let hit = try await h.get("/big")
      #expect(hit.body == big)
      #expect(hit.cacheStatus.contains("hit"))
    }
  }

  @Test func aConnectionsLastKeyIsReusedOnlyForTheSameHostAndTarget() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/a", reply: .text("A", ["Cache-Control": "max-age=60"]))
      h.origin.route("/b", reply: .text("B", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/a")
      _ = try await h.get("/b")
      let responder = try #require(h.app.proxy.immediateResponder)
      var memo = ImmediateConnectionMemo()
      func body(_ uri: String, host: String = "example.test") -> String? {
        responder.immediateResponse(to: head(uri, ["Host": host]), keepAlive: true, connection: &memo)?.parsed.body
      }
      #expect(body("/a") == "A")
      #expect(body("/a") == "A")
      #expect(body("/b") == "B")
      #expect(body("/a") == "A")
      #expect(body("/a", host: "other.test") == nil, "another host is another key")
      #expect(body("/a", host: "EXAMPLE.test") == "A")
      // On the wire: one connection, pipelined requests alternating between the two.
      let client = try await RawClient(port: proxyPort(h))
      var requests = ""
      for (index, path) in ["/a", "/a", "/b", "/a", "/b", "/b"].enumerated() {
        requests += "GET \(path) HTTP/1.1\r\nHost: example.test\r\n\(index == 5 ? "Connection: close\r\n" : "")\r\n"
      }
      try await client.send(requests)
      #expect(try await client.waitFor { $0.isClosed })
      let bodies = client.text.split(separator: "\r\n\r\n").dropFirst().map { String($0.prefix(1)) }
      #expect(bodies == ["A", "A", "B", "A", "B", "B"])
      await client.close()
    }
  }

  @Test func extensionFactsMatchTheDecoder() {
    var samples: [[UInt8]] = [[], Array("foreign".utf8), Array("edge-cdn/1".utf8), Array("edge-cdn/10;age=3".utf8)]
    var ext = EntryExtensions()
    for (age, index) in [(Int64(0), false), (3, false), (86_400, true), (-2, false)] {
      ext.initialAge = age
      ext.isVaryIndex = index
      ext.varyNames = index ? ["accept-encoding", "x"] : []
      ext.generation = index ? 42 : 0
      ext.bodySize = 1024
      samples.append(ext.encoded())
    }
    samples.append(Array("edge-cdn/1;;age=7;index".utf8))
    samples.append(Array("edge-cdn/1;age=x;mr".utf8))
    for bytes in samples {
      let decoded = EntryExtensions(decoding: bytes)
      let facts = EntryExtensions.hitFacts(of: bytes)
      #expect(facts.initialAge == decoded.initialAge, "\(String(decoding: bytes, as: UTF8.self))")
      #expect(facts.isVaryIndex == decoded.isVaryIndex, "\(String(decoding: bytes, as: UTF8.self))")
    }
  }
}

extension ImmediateResponse {
  /// The response as a client reads it, whether its head was given as fields or bytes.
  var parsed: (status: HTTPResponseStatus, headers: HTTPHeaders, body: String) {
    let bodyText =
      body.map { String(buffer: $0) }.joined() + ((try? fileBody?.read()).map { String(buffer: $0) } ?? "")
    switch head {
    case .fields(let head):
      return (head.status, head.headers, bodyText)
    case .encoded(let bytes):
      let text = String(buffer: bytes) + bodyText
      guard let end = text.firstRange(of: "\r\n\r\n") else { return (.custom(code: 0, reasonPhrase: ""), [:], "") }
      var lines = text[..<end.lowerBound].split(separator: "\r\n", omittingEmptySubsequences: false)
      let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
      let code = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
      var headers = HTTPHeaders()
      for line in lines {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers.add(name: String(line[..<colon]), value: String(line[line.index(after: colon)...].drop { $0 == " " }))
      }
      return (HTTPResponseStatus(statusCode: code), headers, String(text[end.upperBound...]))
    }
  }
}
