import EdgeCDNStore
import NIOHTTP1
import Testing

@testable import EdgeCDN

@Suite struct ProxyFreshnessTests {
  func ttl(_ response: TestResponse) -> Int? {
    guard let range = response.cacheStatus.firstRange(of: "ttl=") else { return nil }
    return Int(response.cacheStatus[range.upperBound...].prefix { $0 == "-" || $0.isNumber })
  }

  @Test func expiresGivesTheLifetime() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/exp") { _, _ in
        let now = CacheTime.nowSeconds
        return .text(
          "e",
          ["Date": HTTPDate.format(secondsSinceEpoch: now), "Expires": HTTPDate.format(secondsSinceEpoch: now + 100)])
      }
      let watch = Stopwatch()
      _ = try await h.get("/exp")
      let hit = try await h.get("/exp")
      #expect(hit.cacheStatus.contains("hit"))
      // 100 s less the time spent since the origin's Date, however long a stall made it.
      #expect(((98 - watch.seconds)...100).contains(ttl(hit) ?? -1), "\(hit.cacheStatus) after \(watch.seconds) s")
    }
  }

  @Test func heuristicFreshnessFromLastModified() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/lm") { _, _ in
        let now = CacheTime.nowSeconds
        return .text(
          "l",
          [
            "Date": HTTPDate.format(secondsSinceEpoch: now),
            "Last-Modified": HTTPDate.format(secondsSinceEpoch: now - 1000),
          ])
      }
      let watch = Stopwatch()
      _ = try await h.get("/lm")
      let hit = try await h.get("/lm")
      #expect(hit.cacheStatus.contains("hit"))
      #expect(((98 - watch.seconds)...100).contains(ttl(hit) ?? -1), "\(hit.cacheStatus) after \(watch.seconds) s")
    }
  }

  @Test func maxStaleAcceptsAStaleEntryWithoutTheOrigin() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/ms", reply: .text("m", ["Cache-Control": "max-age=0", "ETag": "\"m\""]))
      _ = try await h.get("/ms")
      let stale = try await h.get("/ms", ["Cache-Control": "max-stale=60"])
      #expect(stale.cacheStatus.contains("hit; ttl=-") || stale.cacheStatus.contains("hit; ttl=0"))
      #expect(h.origin.count("/ms") == 1)
      // Without max-stale it is revalidated.
      _ = try await h.get("/ms")
      #expect(h.origin.count("/ms") == 2)
    }
  }

  @Test func noCacheResponseIsRevalidatedEveryTime() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/nc") { request, _ in
        if request.head.headers.first(name: "if-none-match") == "\"n\"" {
          return OriginReply(status: .notModified, headers: ["ETag": "\"n\"", "Cache-Control": "no-cache"])
        }
        return .text("body", ["Cache-Control": "no-cache", "ETag": "\"n\""])
      }
      _ = try await h.get("/nc")
      let second = try await h.get("/nc")
      #expect(second.body == "body")
      #expect(second.cacheStatus.contains("fwd-status=304"))
      #expect(h.origin.count("/nc") == 2)
    }
  }

  @Test func ageFromUpstreamMakesItStaleSooner() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/aged", reply: .text("a", ["Cache-Control": "max-age=100", "Age": "40"]))
      let watch = Stopwatch()
      _ = try await h.get("/aged")
      let hit = try await h.get("/aged")
      #expect(((58 - watch.seconds)...60).contains(ttl(hit) ?? -1), "\(hit.cacheStatus) after \(watch.seconds) s")
      #expect((40...(41 + watch.seconds)).contains(Int(hit["age"] ?? "") ?? -1), "after \(watch.seconds) s")
    }
  }
}

extension CacheTime {
  static var nowSeconds: Int64 { CacheTime.now().secondsSinceEpoch }
}
