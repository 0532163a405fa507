import EdgeCDNStore
import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// A small miss whose whole body comes with the origin's first read is stored and served
/// from the bytes in hand (`CachingProxy.storeWholeAndServe`), with every rule of the
/// streaming path: exact bytes, coalesced waiters served, the fill independent of the
/// client, ranges and conditionals answered as from the store.
@Suite struct ProxyWholeMissTests {
  /// 1 KiB of every byte value, so a lost or shifted byte shows.
  static let body = String(decoding: (0..<1024).map { UInt8(truncatingIfNeeded: $0 % 94 + 33) }, as: UTF8.self)

  @Test func aSmallMissIsServedExactlyAndStored() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/small", reply: .text(Self.body, ["Cache-Control": "max-age=60", "ETag": "\"s1\""]))
      let watch = Stopwatch()
      let miss = try await h.get("/small")
      #expect(miss.status == 200)
      #expect(miss.body == Self.body)
      #expect(miss["content-length"] == "1024")
      // 0 but for a stall of a loaded machine, which the age counts (the response's delay).
      #expect(miss["age"].flatMap { Int($0) }.map { (0...watch.seconds).contains($0) } == true, "\(watch.seconds)")
      #expect(miss["etag"] == "\"s1\"")
      #expect(miss.cacheStatus.contains("fwd=uri-miss") && miss.cacheStatus.contains("stored"), "\(miss.cacheStatus)")
      #expect(h.store.objectCount == 1)
      let hit = try await h.get("/small")
      #expect(hit.cacheStatus.contains("hit"), "\(hit.cacheStatus)")
      #expect(hit.body == Self.body)
      #expect(h.origin.count("/small") == 1)
    }
  }

  @Test func anEmptyBodyIsStored() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/empty", reply: .text("", ["Cache-Control": "max-age=60"]))
      let miss = try await h.get("/empty")
      #expect(miss.status == 200 && miss.body.isEmpty && miss["content-length"] == "0")
      #expect(miss.cacheStatus.contains("stored"), "\(miss.cacheStatus)")
      #expect(try await h.get("/empty").cacheStatus.contains("hit"))
      #expect(h.origin.count("/empty") == 1)
    }
  }

  @Test func coalescedWaitersGetTheObject() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/together") { _, _ in
        var reply = OriginReply.text(Self.body, ["Cache-Control": "max-age=60"])
        reply.delayMilliseconds = 300
        return reply
      }
      let responses = try await h.getConcurrently("/together", count: 5)
      #expect(responses.count == 5)
      #expect(responses.allSatisfy { $0.status == 200 && $0.body == Self.body })
      #expect(h.origin.count("/together") == 1)
      #expect(responses.contains { $0.cacheStatus.contains("collapsed") }, "\(responses.map(\.cacheStatus))")
    }
  }

  @Test func aClientThatLeavesBeforeTheAnswerDoesNotStopTheFill() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/gone") { _, _ in
        var reply = OriginReply.text(Self.body, ["Cache-Control": "max-age=60"])
        reply.delayMilliseconds = 300
        return reply
      }
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      try await client.send("GET /gone HTTP/1.1\r\nHost: example.test\r\n\r\n")
      try await h.eventually("the origin to be asked") { h.origin.count("/gone") == 1 }
      await client.close()
      try await h.eventually("the fill to finish") { h.store.objectCount == 1 }
      let hit = try await h.get("/gone")
      #expect(hit.cacheStatus.contains("hit"), "\(hit.cacheStatus)")
      #expect(hit.body == Self.body)
      #expect(h.origin.count("/gone") == 1)
    }
  }

  /// The origin sends the head and hangs up: nothing went to the client yet, so it gets a
  /// whole 502 (not a cut 200), nothing is stored, and the next request asks again.
  @Test func anOriginThatHangsUpAfterTheHeadIsA502AndNothingIsStored() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/hangup") { _, n in
        var reply = OriginReply.text(Self.body, ["Cache-Control": "max-age=60"])
        if n == 1 { reply.hangUpAfterChunks = 0 }
        return reply
      }
      let failed = try await h.get("/hangup")
      #expect(failed.status == 502, "\(failed.status) \(failed.cacheStatus)")
      #expect(failed.cacheStatus.contains("origin-error"), "\(failed.cacheStatus)")
      #expect(h.store.objectCount == 0)
      let second = try await h.get("/hangup")
      #expect(second.status == 200 && second.body == Self.body)
      #expect(second.cacheStatus.contains("stored"), "\(second.cacheStatus)")
      #expect(h.origin.count("/hangup") == 2)
    }
  }

  /// Part of the body, then the origin hangs up: the body streams (it was not whole with
  /// the head), so the client sees its response cut, and nothing is stored.
  @Test func anOriginThatHangsUpMidBodyStoresNothing() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/cut") { _, n in
        var reply = OriginReply(
          status: .ok, headers: ["Cache-Control": "max-age=60", "Content-Length": "30"],
          chunks: ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"], chunkDelayMilliseconds: 50)
        if n == 1 { reply.hangUpAfterChunks = 1 }
        return reply
      }
      let cut = try? await h.get("/cut")
      #expect(cut == nil || cut?.status == 502 || cut?.body.utf8.count ?? 0 < 30, "\(String(describing: cut))")
      try await h.eventually("the aborted fill to be gone") { h.store.objectCount == 0 }
      let second = try await h.get("/cut")
      #expect(second.body == "aaaaaaaaaabbbbbbbbbbcccccccccc")
      #expect(h.origin.count("/cut") == 2)
    }
  }

  @Test func rangesAndConditionalsOnASmallMissAreAnsweredAsFromTheStore() async throws {
    try await ProxyHarness.run { h in
      for path in ["/ranged", "/multi", "/cond"] {
        h.origin.route(path, reply: .text(Self.body, ["Cache-Control": "max-age=60", "ETag": "\"r1\""]))
      }
      let range = try await h.get("/ranged", ["Range": "bytes=10-19"])
      #expect(range.status == 206)
      #expect(range.body == String(Self.body.dropFirst(10).prefix(10)))
      #expect(range["content-range"] == "bytes 10-19/1024")
      // The whole object was stored, not the range.
      let whole = try await h.get("/ranged")
      #expect(whole.cacheStatus.contains("hit") && whole.body == Self.body)
      let multi = try await h.get("/multi", ["Range": "bytes=0-1,5-6"])
      #expect(multi.status == 206)
      #expect(multi["content-type"]?.hasPrefix("multipart/byteranges") == true)
      let unsatisfiable = try await h.get("/multi", ["Range": "bytes=5000-"])
      #expect(unsatisfiable.status == 416)
      let notModified = try await h.get("/cond", ["If-None-Match": "\"r1\""])
      #expect(notModified.status == 304 && notModified.body.isEmpty)
      #expect(notModified.cacheStatus.contains("stored"), "\(notModified.cacheStatus)")
      #expect(try await h.get("/cond").body == Self.body)
      #expect(h.origin.count("/ranged") == 1 && h.origin.count("/multi") == 1 && h.origin.count("/cond") == 1)
    }
  }

  @Test func aBufferedBodySeeksAsAStoredOneDoes() async throws {
    var handler = BufferedHitHandler(hash: CacheKey(primary: "x").combinedHash, body: ByteBuffer(string: "0123456789"))
    try await handler.seek(start: 2, end: 5)
    #expect(try await handler.readBody().map { String(buffer: $0) } == "234")
    #expect(try await handler.readBody() == nil)
    try await handler.seek(start: 8, end: 100)
    #expect(try await handler.readBody().map { String(buffer: $0) } == "89")
    await #expect(throws: CacheError.self) { try await handler.seek(start: 10, end: nil) }
    var whole = BufferedHitHandler(hash: CacheKey(primary: "x").combinedHash, body: ByteBuffer(string: "abc"))
    #expect(try await whole.readBody().map { String(buffer: $0) } == "abc")
    #expect(try await whole.readBody() == nil)
    #expect(whole.shouldCountAccess && !handler.shouldCountAccess)
  }
}
