import Testing

@testable import EdgeCDN

@Suite struct CacheControlTests {
  /// Quoted commas, tabs, spaces around `=`, empty members and upper case, as the byte
  /// walk reads them.
  @Test func splitsAndTrimsOnBytes() {
    let cc = CacheControl(values: ["  no-cache=\"Set-Cookie, X-A\" ,\tMAX-AGE = 5 , , private\t", "s-maxage=\"7\""])
    #expect(cc.noCacheFields == ["set-cookie", "x-a"])
    #expect(!cc.noCache)
    #expect(cc.maxAge == 5 && cc.sMaxAge == 7 && cc.isPrivate)
    #expect(CacheControl.split(" a ,, \"b,c\" ,") == ["a", "\"b,c\""])
    #expect(CacheControl.nameAndArgument("x=\"\"") == ("x", ""))
  }

  @Test func parsesResponseDirectives() {
    let cc = CacheControl(values: ["public, max-age=60", "s-maxage=\"120\", must-revalidate, stale-if-error=30"])
    #expect(cc.isPublic)
    #expect(cc.maxAge == 60)
    #expect(cc.sMaxAge == 120)
    #expect(cc.mustRevalidate)
    #expect(cc.staleIfError == 30)
    #expect(!cc.noStore && !cc.isPrivate)
  }

  @Test func parsesRequestDirectives() {
    let cc = CacheControl(values: ["max-stale, min-fresh=5, only-if-cached, no-cache"])
    #expect(cc.maxStale == Int.max)
    #expect(cc.minFresh == 5)
    #expect(cc.onlyIfCached)
    #expect(cc.noCache)
  }

  @Test func noCacheWithFieldsIsNotUnqualified() {
    let cc = CacheControl(values: ["no-cache=\"set-cookie, x-a\", max-age=5"])
    #expect(!cc.noCache)
    #expect(cc.noCacheFields == ["set-cookie", "x-a"])
    #expect(cc.maxAge == 5)
  }

  @Test func invalidAgeIsFlaggedAndUnknownIgnored() {
    let cc = CacheControl(values: ["max-age=abc, foo=bar, NO-STORE"])
    #expect(cc.maxAge == nil)
    #expect(cc.hasInvalidAge)
    #expect(cc.noStore)
  }

  @Test func hugeAgeSaturates() {
    #expect(CacheControl(values: ["max-age=99999999999999999999"]).maxAge == 2_147_483_648)
  }
}

@Suite struct HTTPDateTests {
  @Test func roundTripsIMFFixdate() {
    #expect(HTTPDate.format(secondsSinceEpoch: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
    #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
  }

  @Test func parsesObsoleteForms() {
    #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
    #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == 784_111_777)
  }

  @Test func rejectsGarbage() {
    #expect(HTTPDate.parse("0") == nil)
    #expect(HTTPDate.parse("Sun, 32 Nov 1994 08:49:37 GMT") == nil)
    #expect(HTTPDate.parse("") == nil)
  }

  /// The byte reader of IMF-fixdate gives what the general parser (and timegm) gives, on
  /// dates across two centuries, leap days and days run past a month's end included.
  @Test func theFixdateReaderAgreesWithTheGeneralParser() {
    var seconds: Int64 = 0
    for _ in 0..<3000 {
      let text = HTTPDate.format(secondsSinceEpoch: seconds)
      #expect(HTTPDate.parseFixdate(text) == seconds, "\(text)")
      #expect(HTTPDate.parseTokens(text) == seconds, "\(text)")
      seconds += 2_111_111 + seconds % 86_399
    }
    for text in [
      "Thu, 29 Feb 2024 23:59:60 GMT", "Sat, 31 Feb 2001 00:00:00 GMT", "Mon, 01 Jan 1900 12:00:00 GMT",
      "Fri, 31 Dec 2100 23:59:59 GMT",
    ] {
      #expect(
        HTTPDate.parseFixdate(text) != nil && HTTPDate.parseFixdate(text) == HTTPDate.parseTokens(text), "\(text)")
    }
    for text in [
      "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:4x:37 GMT", "Sun,  6 Nov 1994 08:49:37 GMT",
    ] {
      #expect(HTTPDate.parseFixdate(text) == nil, "\(text)")
    }
  }
}
