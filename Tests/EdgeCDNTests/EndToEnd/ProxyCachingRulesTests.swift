import EdgeCDNStore
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

@testable import EdgeCDN

@Suite struct ProxyCachingRulesTests {
  @Test func concurrentMissesMakeOneOriginRequest() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/hot") { _, _ in
        var reply = OriginReply.text("shared body", ["Cache-Control": "max-age=60"])
        reply.delayMilliseconds = 300
        return reply
      }
      let responses = try await h.getConcurrently("/hot", count: 10)
      #expect(responses.count == 10)
      #expect(responses.allSatisfy { $0.status == 200 && $0.body == "shared body" })
      #expect(h.origin.count("/hot") == 1)
      // Those that arrived while the fetch was in flight waited for it; on a loaded machine a
      // late one may instead find the stored object. Either way: one origin request.
      var collapsed = 0
      var led = 0
      for response in responses {
        let status = response.cacheStatus
        if status.hasSuffix("; collapsed") || status.hasPrefix("edge-cdn; hit") { collapsed += 1 }
        if status == "edge-cdn; fwd=uri-miss; stored" { led += 1 }
      }
      #expect(led == 1, "\(responses.map(\.cacheStatus))")
      #expect(collapsed == 9, "\(responses.map(\.cacheStatus))")
    }
  }

  @Test func concurrentRevalidationsOfAStaleEntryMakeOneOriginRequest() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/stale") { request, _ in
        var reply =
          request.head.headers.first(name: "if-none-match") == "\"s1\""
          ? OriginReply(status: .notModified, headers: ["ETag": "\"s1\"", "Cache-Control": "max-age=60"])
          : OriginReply.text("changed", ["ETag": "\"s2\"", "Cache-Control": "max-age=60"])
        reply.delayMilliseconds = 300
        return reply
      }
      // A stale entry written straight into the store: no sleeping, whatever the machine's load.
      try await h.store(
        "/stale", body: "stored",
        fields: [.init("Content-Length", "6"), .init("ETag", "\"s1\""), .init("Cache-Control", "max-age=60")],
        secondsAgo: 65)
      let responses = try await h.getConcurrently("/stale", count: 8)
      #expect(responses.allSatisfy { $0.status == 200 && $0.body == "stored" }, "\(responses.map(\.body))")
      #expect(h.origin.count("/stale") == 1, "\(responses.map(\.cacheStatus))")
      let revalidated = responses.filter { $0.cacheStatus.contains("fwd=stale; fwd-status=304") }
      #expect(revalidated.count == 1, "\(responses.map(\.cacheStatus))")
      // The rest waited for that revalidation, or (arriving after it) found the entry fresh.
      #expect(
        responses.allSatisfy {
          $0.cacheStatus.contains("fwd-status=304") || $0.cacheStatus.hasSuffix("collapsed")
            || $0.cacheStatus.hasPrefix("edge-cdn; hit")
        }, "\(responses.map(\.cacheStatus))")
    }
  }

  @Test func waitersReadTheBodyWhileItStreamsIn() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/trickle") { _, _ in
        OriginReply(
          status: .ok, headers: ["Cache-Control": "max-age=60", "Content-Length": "30"],
          chunks: ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"], delayMilliseconds: 100, chunkDelayMilliseconds: 150)
      }
      async let first = h.get("/trickle")
      try await Task.sleep(for: .milliseconds(200))
      // The head is known, the body is still arriving: this one reads the write in progress.
      let second = try await h.get("/trickle")
      #expect(second.body == "aaaaaaaaaabbbbbbbbbbcccccccccc")
      #expect(try await first.body == "aaaaaaaaaabbbbbbbbbbcccccccccc")
      #expect(h.origin.count("/trickle") == 1)
    }
  }

  @Test func uncacheableCoalescedMissesEachGoToTheOrigin() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/nc") { _, _ in
        var reply = OriginReply.text("x", ["Cache-Control": "no-store"])
        reply.delayMilliseconds = 200
        return reply
      }
      try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<3 { group.addTask { _ = try await h.get("/nc") } }
        try await group.waitForAll()
      }
      #expect(h.origin.count("/nc") == 3)
    }
  }

  @Test func staleEntryIsRevalidatedAnd304UpdatesMeta() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/v") { request, n in
        if n > 1, request.head.headers.first(name: "if-none-match") == "\"e1\"" {
          return OriginReply(
            status: .notModified, headers: ["Cache-Control": "max-age=60", "ETag": "\"e1\"", "X-Rev": "2"])
        }
        return .text("payload", ["Cache-Control": "max-age=0", "ETag": "\"e1\"", "X-Rev": "1"])
      }
      _ = try await h.get("/v")
      let revalidated = try await h.get("/v")
      #expect(revalidated.status == 200)
      #expect(revalidated.body == "payload")
      #expect(revalidated.cacheStatus.contains("fwd=stale; fwd-status=304"))
      #expect(revalidated["x-rev"] == "2")
      // The 304 made it fresh for 60 s: now a plain hit.
      let hit = try await h.get("/v")
      #expect(hit.cacheStatus.contains("hit; ttl="))
      #expect(hit["x-rev"] == "2")
      #expect(h.origin.count("/v") == 2)
    }
  }

  @Test func staleIfErrorServesStaleWhenOriginFails() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/sie") { _, n in
        n == 1
          ? .text("good", ["Cache-Control": "max-age=0, stale-if-error=60", "ETag": "\"g\""])
          : .text("boom", status: .internalServerError)
      }
      h.origin.route("/mr") { _, n in
        n == 1
          ? .text("good", ["Cache-Control": "max-age=0, stale-if-error=60, must-revalidate", "ETag": "\"g\""])
          : .text("boom", status: .internalServerError)
      }
      _ = try await h.get("/sie")
      let stale = try await h.get("/sie")
      #expect(stale.status == 200)
      #expect(stale.body == "good")
      #expect(stale.cacheStatus.contains("detail=stale-if-error"))
      _ = try await h.get("/mr")
      let strict = try await h.get("/mr")
      #expect(strict.status == 500)
    }
  }

  /// The origin answers a revalidation with a 200 head, then hangs up before its body:
  /// nothing was sent to the client yet, so stale-if-error still serves the stale copy.
  @Test func staleIfErrorCoversAnOriginThatFailsAfterItsHead() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/cut") { _, n in
        guard n > 1 else { return .text("good", ["Cache-Control": "max-age=0, stale-if-error=60", "ETag": "\"g\""]) }
        var reply = OriginReply.text("newer", ["Cache-Control": "max-age=60"])
        reply.hangUpAfterChunks = 0
        return reply
      }
      #expect(try await h.get("/cut").body == "good")
      let stale = try await h.get("/cut")
      #expect(stale.status == 200, "\(stale.status) \(stale.cacheStatus)")
      #expect(stale.body == "good")
      #expect(stale.cacheStatus.contains("detail=stale-if-error"), "\(stale.cacheStatus)")
      #expect(h.origin.count("/cut") == 2)
    }
  }

  @Test func staleWhileRevalidateServesStaleAndRefreshes() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/swr") { _, n in
        .text("v\(n)", ["Cache-Control": "max-age=0, stale-while-revalidate=60", "ETag": "\"\(n)\""])
      }
      #expect(try await h.get("/swr").body == "v1")
      let stale = try await h.get("/swr")
      #expect(stale.body == "v1")
      #expect(stale.cacheStatus.contains("detail=stale-while-revalidate"))
      try await h.eventually("the background refresh") { h.origin.count("/swr") == 2 }
      try await h.eventually("the refreshed body") { (try? await h.get("/swr").body) == "v2" }
    }
  }

  @Test func varySelectsTheVariantAndVaryStarNeverHits() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/vary") { request, _ in
        let lang = request.head.headers.first(name: "accept-language") ?? "none"
        return .text("lang=\(lang)", ["Cache-Control": "max-age=60", "Vary": "Accept-Language"])
      }
      h.origin.route("/star", reply: .text("s", ["Cache-Control": "max-age=60", "Vary": "*"]))
      #expect(try await h.get("/vary", ["Accept-Language": "en"]).body == "lang=en")
      let fr = try await h.get("/vary", ["Accept-Language": "fr"])
      #expect(fr.body == "lang=fr")
      #expect(fr.cacheStatus.contains("fwd=vary-miss"))
      let en = try await h.get("/vary", ["Accept-Language": "en"])
      #expect(en.body == "lang=en")
      #expect(en.cacheStatus.contains("hit"))
      #expect(try await h.get("/vary", ["Accept-Language": "fr"]).body == "lang=fr")
      #expect(h.origin.count("/vary") == 2)
      _ = try await h.get("/star")
      _ = try await h.get("/star")
      #expect(h.origin.count("/star") == 2)
    }
  }

  @Test func rangesSingleMultipartAndUnsatisfiable() async throws {
    try await ProxyHarness.run { h in
      h.origin.route(
        "/bytes", reply: .text("0123456789", ["Cache-Control": "max-age=60", "Content-Type": "text/plain"]))
      _ = try await h.get("/bytes")
      let single = try await h.get("/bytes", ["Range": "bytes=2-5"])
      #expect(single.status == 206)
      #expect(single.body == "2345")
      #expect(single["content-range"] == "bytes 2-5/10")
      let suffix = try await h.get("/bytes", ["Range": "bytes=-3"])
      #expect(suffix.body == "789")
      let multi = try await h.get("/bytes", ["Range": "bytes=0-1,8-9"])
      #expect(multi.status == 206)
      #expect(multi["content-type"]?.hasPrefix("multipart/byteranges; boundary=") == true)
      #expect(multi.body.contains("Content-Range: bytes 0-1/10\r\n\r\n01"))
      #expect(multi.body.contains("Content-Range: bytes 8-9/10\r\n\r\n89"))
      #expect(Int(multi["content-length"] ?? "") == multi.body.utf8.count)
      let bad = try await h.get("/bytes", ["Range": "bytes=20-30"])
      #expect(bad.status == 416)
      #expect(bad["content-range"] == "bytes */10")
      let ifRange = try await h.get("/bytes", ["Range": "bytes=2-5", "If-Range": "\"other\""])
      #expect(ifRange.status == 200)
      #expect(h.origin.count("/bytes") == 1)
    }
  }

  @Test func purgeByMethodAndAdminNeedsTheToken() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/p", reply: .text("p", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/p")
      #expect(try await h.request("/p", method: .RAW(value: "PURGE")).status == 401)
      #expect(
        try await h.request("/p", method: .RAW(value: "PURGE"), headers: ["Authorization": "Bearer wrong-token"]).status
          == 401)
      let purged = try await h.request(
        "/p", method: .RAW(value: "PURGE"), headers: ["Authorization": "Bearer \(ProxyHarness.token)"])
      #expect(purged.status == 200)
      #expect(try await h.get("/p").cacheStatus.contains("fwd=uri-miss"))
      #expect(try await h.admin("/purge?url=http://example.test/p", method: .POST).status == 401)
      let viaAdmin = try await h.admin(
        "/purge?url=http%3A%2F%2Fexample.test%2Fp", method: .POST,
        headers: ["Authorization": "Bearer \(ProxyHarness.token)"])
      #expect(viaAdmin.status == 200)
      #expect(try await h.get("/p").cacheStatus.contains("fwd=uri-miss"))
      #expect(h.origin.count("/p") == 3)
    }
  }

  @Test func purgeOfAVariedURLOrphansEveryVariant() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/pv") { request, _ in
        .text(request.head.headers.first(name: "x-v") ?? "-", ["Cache-Control": "max-age=60", "Vary": "X-V"])
      }
      _ = try await h.get("/pv", ["X-V": "a"])
      _ = try await h.get("/pv", ["X-V": "b"])
      let purged = try await h.request(
        "/pv", method: .RAW(value: "PURGE"), headers: ["Authorization": "Bearer \(ProxyHarness.token)"])
      #expect(purged.status == 200)
      _ = try await h.get("/pv", ["X-V": "a"])
      _ = try await h.get("/pv", ["X-V": "b"])
      #expect(h.origin.count("/pv") == 4)
    }
  }

  @Test func adminHealthReadyAndMetricsSeam() async throws {
    try await ProxyHarness.run { h in
      #expect(try await h.admin("/healthz").status == 200)
      #expect(try await h.admin("/readyz").status == 200)
      let metrics = try await h.admin("/metrics")
      #expect(metrics.status == 404)
      #expect(metrics.body.contains("not wired"))
      h.app.readiness.set(false)
      #expect(try await h.admin("/readyz").status == 503)
    }
  }
}
