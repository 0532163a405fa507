import NIOHTTP1
import Synchronization
import Testing

@testable import EdgeCDN

@Suite struct ProxyBasicsTests {
  @Test func requestCountersRenderAsPrometheusText() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/m", reply: .text("m", ["Cache-Control": "max-age=60"]))
      h.origin.route("/p", reply: .text("p", ["Cache-Control": "no-store"]))
      _ = try await h.get("/m")
      _ = try await h.get("/m")
      _ = try await h.get("/p")
      let text = h.app.proxy.stats.prometheusText
      #expect(text.contains("# TYPE edge_cdn_proxy_requests_total counter\n"))
      #expect(text.contains("edge_cdn_proxy_requests_total{outcome=\"miss\"} 2\n"), "\(text)")
      #expect(text.contains("edge_cdn_proxy_requests_total{outcome=\"hit\"} 1\n"), "\(text)")
      #expect(text.contains("edge_cdn_proxy_requests_total{outcome=\"stale_while_revalidate\"} 0\n"))
      #expect(!text.contains("staleWhileRevalidate"))
    }
  }

  @Test func missIsStoredThenHitWithAgeAndCacheStatus() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/a", reply: .text("hello", ["Cache-Control": "max-age=60", "Age": "3"]))
      let watch = Stopwatch()
      let first = try await h.get("/a")
      #expect(first.status == 200)
      #expect(first.body == "hello")
      #expect(first.cacheStatus == "edge-cdn; fwd=uri-miss; stored")
      let second = try await h.get("/a")
      #expect(second.body == "hello")
      #expect(second.cacheStatus.hasPrefix("edge-cdn; hit; ttl="))
      let age = Int(second["age"] ?? "") ?? -1
      // 3 from the origin plus the seconds that passed between the two requests, however
      // long a loaded machine stalled them.
      #expect((3...(4 + watch.seconds)).contains(age), "age \(age) after \(watch.seconds) s")
      #expect(h.origin.count("/a") == 1)
    }
  }

  @Test func uncacheableResponsesAreForwardedEveryTime() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/private", reply: .text("p", ["Cache-Control": "private, max-age=60"]))
      h.origin.route("/cookie", reply: .text("c", ["Cache-Control": "max-age=60", "Set-Cookie": "s=1"]))
      h.origin.route("/nostore", reply: .text("n", ["Cache-Control": "no-store"]))
      for path in ["/private", "/cookie", "/nostore"] {
        _ = try await h.get(path)
        let again = try await h.get(path)
        #expect(again.cacheStatus.contains("fwd=uri-miss"), "\(path): \(again.cacheStatus)")
        #expect(h.origin.count(path) == 2, "\(path)")
      }
      let cookie = try await h.get("/cookie")
      #expect(cookie["set-cookie"] == "s=1")
      #expect(cookie.cacheStatus.contains("detail=set-cookie"))
    }
  }

  @Test func authorizationIsNotSharedWithoutPublic() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/auth", reply: .text("secret", ["Cache-Control": "max-age=60"]))
      h.origin.route("/pub", reply: .text("open", ["Cache-Control": "public, max-age=60"]))
      _ = try await h.get("/auth", ["Authorization": "Bearer a"])
      _ = try await h.get("/auth", ["Authorization": "Bearer a"])
      #expect(h.origin.count("/auth") == 2)
      _ = try await h.get("/pub", ["Authorization": "Bearer a"])
      let hit = try await h.get("/pub", ["Authorization": "Bearer a"])
      #expect(hit.cacheStatus.contains("hit"))
      #expect(h.origin.count("/pub") == 1)
    }
  }

  @Test func headIsServedFromCacheWithoutBody() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/h", reply: .text("body!", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/h")
      let head = try await h.request("/h", method: .HEAD)
      #expect(head.status == 200)
      #expect(head.body == "")
      #expect(head["content-length"] == "5")
      #expect(head.cacheStatus.contains("hit"))
      #expect(h.origin.count("/h") == 1)
    }
  }

  @Test func headMissIsForwardedAndTheConnectionStaysUsable() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/hm", reply: .text("12345", ["Cache-Control": "max-age=60"]))
      let head = try await h.request("/hm", method: .HEAD)
      #expect(head.status == 200)
      #expect(head["content-length"] == "5")
      #expect(head.body == "")
      // The pooled origin connection must not wait for a body a HEAD response has not.
      let get = try await h.get("/hm")
      #expect(get.body == "12345")
      #expect(h.origin.count("/hm") == 2)
    }
  }

  @Test func requestDirectivesNoCacheMaxAgeOnlyIfCached() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/r", reply: .text("r", ["Cache-Control": "max-age=60", "ETag": "\"r1\""]))
      let missing = try await h.get("/none", ["Cache-Control": "only-if-cached"])
      #expect(missing.status == 504)
      _ = try await h.get("/r")
      #expect(try await h.get("/r", ["Cache-Control": "only-if-cached"]).status == 200)
      // no-cache: revalidated with the origin (which answers 200 here, replacing it).
      let revalidated = try await h.get("/r", ["Cache-Control": "no-cache"])
      #expect(revalidated.cacheStatus.contains("fwd=stale"))
      #expect(h.origin.count("/r") == 2)
      // max-age=0 makes anything with an age stale; min-fresh beyond the ttl too.
      _ = try await h.get("/r", ["Cache-Control": "min-fresh=120"])
      #expect(h.origin.count("/r") == 3)
      let fresh = try await h.get("/r", ["Cache-Control": "min-fresh=10"])
      #expect(fresh.cacheStatus.contains("hit"))
      #expect(h.origin.count("/r") == 3)
    }
  }

  @Test func clientConditionalGets304FromCache() async throws {
    try await ProxyHarness.run { h in
      let lastModified = HTTPDate.format(secondsSinceEpoch: 1_600_000_000)
      h.origin.route(
        "/c", reply: .text("cond", ["Cache-Control": "max-age=60", "ETag": "\"v1\"", "Last-Modified": lastModified]))
      _ = try await h.get("/c")
      let inm = try await h.get("/c", ["If-None-Match": "\"v1\""])
      #expect(inm.status == 304)
      #expect(inm.body == "")
      #expect(inm["etag"] == "\"v1\"")
      let ims = try await h.get("/c", ["If-Modified-Since": lastModified])
      #expect(ims.status == 304)
      let changed = try await h.get("/c", ["If-None-Match": "\"v0\""])
      #expect(changed.status == 200)
      #expect(h.origin.count("/c") == 1)
    }
  }

  @Test func largeBodyStreamsThroughMissAndHit() async throws {
    try await ProxyHarness.run { h in
      let chunk = String(repeating: "x", count: 64 << 10)
      h.origin.route("/big") { _, _ in
        OriginReply(
          status: .ok, headers: ["Cache-Control": "max-age=60"], chunks: Array(repeating: chunk, count: 32))
      }
      let miss = try await h.get("/big")
      #expect(miss.body.utf8.count == 2 << 20)
      #expect(miss.cacheStatus.contains("stored"))
      let hit = try await h.get("/big")
      #expect(hit.body.utf8.count == 2 << 20)
      #expect(hit.cacheStatus.contains("hit"))
      #expect(h.origin.count("/big") == 1)
    }
  }

  @Test func unsafeMethodIsForwardedAndInvalidates() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/u", reply: .text("u", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/u")
      #expect(try await h.get("/u").cacheStatus.contains("hit"))
      let post = try await h.request("/u", method: .POST)
      #expect(post.cacheStatus.contains("fwd=method"))
      #expect(try await h.get("/u").cacheStatus.contains("fwd=uri-miss"))
      #expect(h.origin.count("/u") == 3)
    }
  }

  @Test func originDownIs502AndTimeoutIs504() async throws {
    try await ProxyHarness.run(configure: { $0.originResponseTimeoutSeconds = 1 }) { h in
      h.origin.route("/slow") { _, _ in OriginReply(delayMilliseconds: 2_500) }
      let slowWatch = Stopwatch()
      let slow = try await h.get("/slow")
      // Unless a stall of the loaded machine outlasted the 5 s connect timeout first (a 502
      // after 23 s in one CI run): the origin was then rightly taken as unreachable.
      #expect(
        slow.status == 504 || (slow.status == 502 && slowWatch.seconds > 5),
        "\(slow.status) after \(slowWatch.seconds) s: \(slow.cacheStatus) \(slow.body)")
      let watch = Stopwatch()
      let missing = try await h.get("/missing")  // the origin's own 404 passes through
      // Unless a stall of the loaded machine made even this answer later than the 1 s limit.
      #expect(
        missing.status == 404 || (missing.status == 504 && watch.seconds > 1),
        "\(missing.status) after \(watch.seconds) s: \(missing.cacheStatus) \(missing.body)")
    }
    try await ProxyHarness.run(configure: { $0.origin = .init(host: "127.0.0.1", port: 1) }) { h in
      let down = try await h.get("/x")
      #expect(down.status == 502)
    }
  }
}
