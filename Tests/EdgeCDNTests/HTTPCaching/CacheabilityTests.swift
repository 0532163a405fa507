import EdgeCDNStore
import NIOHTTP1
import Testing

@testable import EdgeCDN

@Suite struct CacheabilityTests {
  let now: Int64 = 1_700_000_000

  func decide(_ response: HTTPHeaders, status: UInt = 200, request: HTTPHeaders = [:]) -> Cacheability.Decision {
    Cacheability.decide(
      status: status, responseHeaders: response, requestHeaders: request, requestTime: now, responseTime: now)
  }

  func plan(_ decision: Cacheability.Decision) -> Cacheability.Plan? {
    if case .store(let plan) = decision { return plan }
    return nil
  }

  @Test func maxAgeIsStored() {
    #expect(plan(decide(["Cache-Control": "max-age=60"]))?.lifetime == 60)
  }

  @Test func sMaxAgeWinsAndImpliesRevalidate() {
    let p = plan(decide(["Cache-Control": "max-age=60, s-maxage=10"]))
    #expect(p?.lifetime == 10)
    #expect(p?.mustRevalidate == true)
  }

  @Test func noStorePrivateSetCookieAreNotStored() {
    #expect(decide(["Cache-Control": "no-store, max-age=60"]) == .doNotStore(reason: "no-store"))
    #expect(decide(["Cache-Control": "private, max-age=60"]) == .doNotStore(reason: "private"))
    #expect(decide(["Cache-Control": "max-age=60", "Set-Cookie": "a=b"]) == .doNotStore(reason: "set-cookie"))
    #expect(
      decide(["Cache-Control": "max-age=60"], request: ["Cache-Control": "no-store"])
        == .doNotStore(reason: "request-no-store"))
  }

  @Test func authorizationNeedsExplicitPermission() {
    let auth: HTTPHeaders = ["Authorization": "Bearer x"]
    #expect(decide(["Cache-Control": "max-age=60"], request: auth) == .doNotStore(reason: "authorization"))
    #expect(plan(decide(["Cache-Control": "public, max-age=60"], request: auth)) != nil)
    #expect(plan(decide(["Cache-Control": "s-maxage=60"], request: auth)) != nil)
    #expect(plan(decide(["Cache-Control": "max-age=60, must-revalidate"], request: auth)) != nil)
  }

  @Test func expiresMinusDate() {
    let headers: HTTPHeaders = [
      "Date": HTTPDate.format(secondsSinceEpoch: now), "Expires": HTTPDate.format(secondsSinceEpoch: now + 300),
      "ETag": "\"a\"",
    ]
    #expect(plan(decide(headers))?.lifetime == 300)
    let invalid: HTTPHeaders = ["Expires": "0", "ETag": "\"a\""]
    #expect(plan(decide(invalid))?.lifetime == 0)
  }

  @Test func heuristicIsTenPercentOfLastModified() {
    let headers: HTTPHeaders = [
      "Date": HTTPDate.format(secondsSinceEpoch: now),
      "Last-Modified": HTTPDate.format(secondsSinceEpoch: now - 1000),
    ]
    #expect(plan(decide(headers))?.lifetime == 100)
    // Not for a status that is not heuristically cacheable.
    #expect(decide(headers, status: 302) == .doNotStore(reason: "status-302"))
  }

  @Test func nothingToGoOnIsNotStored() {
    #expect(decide([:]) == .doNotStore(reason: "no-freshness"))
    #expect(decide(["Cache-Control": "max-age=60"], status: 206) == .doNotStore(reason: "status-206"))
  }

  @Test func explicitFreshnessMakesOtherStatusesStorable() {
    #expect(plan(decide(["Cache-Control": "max-age=60"], status: 302))?.lifetime == 60)
  }

  @Test func varyStarIsNotStoredAndNamesAreNormalised() {
    #expect(decide(["Cache-Control": "max-age=60", "Vary": "Accept, *"]) == .doNotStore(reason: "vary-star"))
    let p = plan(decide(["Cache-Control": "max-age=60", "Vary": "Accept-Encoding, accept", "vary": "X-A"]))
    #expect(p?.varyNames == ["accept", "accept-encoding", "x-a"])
  }

  @Test func noCacheIsStoredButStale() {
    let p = plan(decide(["Cache-Control": "no-cache, max-age=60", "ETag": "\"v\""]))
    #expect(p?.lifetime == 0)
    #expect(p?.mustRevalidate == true)
  }

  @Test func staleWindowsDroppedUnderMustRevalidate() {
    #expect(plan(decide(["Cache-Control": "max-age=1, stale-if-error=60"]))?.staleIfError == 60)
    #expect(plan(decide(["Cache-Control": "max-age=1, stale-if-error=60, must-revalidate"]))?.staleIfError == 0)
  }
}

@Suite struct FreshnessTests {
  @Test func initialAgeFollowsSection423() {
    // Age 10 from upstream, 2 s of response delay: corrected age 12; apparent age 5.
    let headers: HTTPHeaders = ["Age": "10", "Date": HTTPDate.format(secondsSinceEpoch: 995)]
    #expect(Freshness.initialAge(headers: headers, requestTime: 998, responseTime: 1000) == 12)
    let old: HTTPHeaders = ["Date": HTTPDate.format(secondsSinceEpoch: 900)]
    #expect(Freshness.initialAge(headers: old, requestTime: 1000, responseTime: 1000) == 100)
  }

  @Test func currentAddsResidentTime() {
    #expect(Freshness.currentAge(initialAge: 3, responseTime: 100, now: 110) == 13)
  }
}

@Suite struct ConditionalTests {
  @Test func ifNoneMatchUsesWeakComparison() {
    let stored: HTTPHeaders = ["ETag": "W/\"v1\""]
    #expect(Conditional.isNotModified(request: ["If-None-Match": "\"v1\""], stored: stored))
    #expect(Conditional.isNotModified(request: ["If-None-Match": "\"x\", W/\"v1\""], stored: stored))
    #expect(!Conditional.isNotModified(request: ["If-None-Match": "\"v2\""], stored: stored))
    #expect(Conditional.isNotModified(request: ["If-None-Match": "*"], stored: stored))
  }

  @Test func ifModifiedSince() {
    let stored: HTTPHeaders = ["Last-Modified": HTTPDate.format(secondsSinceEpoch: 1000)]
    #expect(
      Conditional.isNotModified(
        request: ["If-Modified-Since": HTTPDate.format(secondsSinceEpoch: 1000)], stored: stored))
    #expect(
      !Conditional.isNotModified(
        request: ["If-Modified-Since": HTTPDate.format(secondsSinceEpoch: 999)], stored: stored))
  }

  @Test func mergeReplacesAllButFraming() {
    let stored: HTTPHeaders = ["Cache-Control": "max-age=1", "Content-Length": "5", "X-A": "old"]
    let merged = Conditional.merge(
      notModified: ["Cache-Control": "max-age=9", "Content-Length": "0", "Connection": "close"], into: stored)
    #expect(merged["cache-control"] == ["max-age=9"])
    #expect(merged["content-length"] == ["5"])
    #expect(merged["x-a"] == ["old"])
    #expect(!merged.contains(name: "connection"))
  }

  @Test func mergeKeepsTheStoredNamesCaseAndPlace() {
    let stored: HTTPHeaders = ["Server": "origin/1", "ETag": "\"a\"", "X-Multi": "1", "X-Multi": "2", "Date": "d1"]
    let merged = Conditional.merge(
      notModified: ["server": "origin/2", "DATE": "d2", "x-multi": "3", "X-New": "n", "x-NEW": "m"], into: stored)
    #expect(merged.map(\.name) == ["Server", "ETag", "X-Multi", "Date", "X-New", "x-NEW"])
    #expect(merged.map(\.value) == ["origin/2", "\"a\"", "3", "d2", "n", "m"])
    #expect(Conditional.merge(notModified: [:], into: stored).map(\.name) == stored.map(\.name))
  }

  @Test func hopByHopIncludesConnectionNamedFields() {
    let stripped = HopByHop.stripped(["Connection": "x-secret", "X-Secret": "1", "Keep-Alive": "5", "X-Keep": "y"])
    #expect(stripped.map(\.name) == ["X-Keep"])
  }
}

@Suite struct RangeRequestTests {
  @Test func resolvesSingleSuffixAndOpen() {
    #expect(RangeRequest.resolve("bytes=0-9", size: 100) == .single(0...9))
    #expect(RangeRequest.resolve("bytes=-10", size: 100) == .single(90...99))
    #expect(RangeRequest.resolve("bytes=95-", size: 100) == .single(95...99))
    #expect(RangeRequest.resolve("bytes=95-200", size: 100) == .single(95...99))
  }

  @Test func multipleAndUnsatisfiable() {
    #expect(RangeRequest.resolve("bytes=0-1, 5-6", size: 10) == .multiple([0...1, 5...6]))
    #expect(RangeRequest.resolve("bytes=10-20", size: 10) == .unsatisfiable)
    #expect(RangeRequest.resolve("bytes=0-1, 20-30", size: 10) == .single(0...1))
  }

  @Test func invalidIsIgnored() {
    #expect(RangeRequest.resolve(nil, size: 10) == .full)
    #expect(RangeRequest.resolve("items=0-1", size: 10) == .full)
    #expect(RangeRequest.resolve("bytes=5-1", size: 10) == .full)
    #expect(RangeRequest.resolve("bytes=a-b", size: 10) == .full)
    let many = "bytes=" + (0..<40).map { "\($0)-\($0)" }.joined(separator: ",")
    #expect(RangeRequest.resolve(many, size: 100) == .full)
  }
}

@Suite struct CacheStatusAndExtensionsTests {
  @Test func formatsRFC9211() {
    #expect(CacheStatus(hit: true, ttl: 42).description == "edge-cdn; hit; ttl=42")
    #expect(CacheStatus(forward: .miss, stored: true).description == "edge-cdn; fwd=miss; stored")
    #expect(
      CacheStatus(forward: .stale, forwardStatus: 304, ttl: 5).description
        == "edge-cdn; fwd=stale; fwd-status=304; ttl=5")
  }

  @Test func extensionsRoundTrip() {
    var ext = EntryExtensions()
    ext.initialAge = 7
    ext.mustRevalidate = true
    ext.isVaryIndex = true
    ext.varyNames = ["accept", "accept-encoding"]
    ext.generation = 99
    ext.bodySize = 1234
    #expect(EntryExtensions(decoding: ext.encoded()) == ext)
    #expect(EntryExtensions(decoding: [1, 2, 3]) == EntryExtensions())
  }

  @Test func varianceDependsOnNamedFieldsAndGeneration() {
    let a = Variance.hash(names: ["accept-encoding"], generation: 1, request: ["Accept-Encoding": "gzip", "X": "1"])
    let b = Variance.hash(names: ["accept-encoding"], generation: 1, request: ["Accept-Encoding": " gzip ", "X": "2"])
    let c = Variance.hash(names: ["accept-encoding"], generation: 1, request: ["Accept-Encoding": "br"])
    let d = Variance.hash(names: ["accept-encoding"], generation: 2, request: ["Accept-Encoding": "gzip"])
    #expect(a == b)
    #expect(a != c)
    #expect(a != d)
  }

  @Test func configurationErrorsNameTheSetting() throws {
    #expect(throws: (any Error).self) { try ProxyConfiguration.Origin(url: "ftp://x") }
    let origin = try ProxyConfiguration.Origin(url: "http://127.0.0.1:8080/")
    #expect(origin.host == "127.0.0.1" && origin.port == 8080)
    var configuration = ProxyConfiguration(origin: origin)
    configuration.maxHeaderBytes = 1 << 20
    do {
      try configuration.validate()
      Issue.record("expected a validation error")
    } catch {
      #expect(error.setting == "proxy.limits.maxHeaderSize")
    }
  }
}
