import Testing

@testable import EdgeCDN

@Suite struct CacheControlTests {
  /// Quoted commas, tabs, spaces around `=`, empty members and upper case, as the byte
  /// walk reads them.
  @Test func splitsAndTrimsOnBytes() {
    let cc = CacheControl(values: ["  no-cache=\"Set-Cookie, X-A\" ,\tMAX-AGE = 5 , , private\t", "s-maxage=\"7\""])
    #expect(cc.noCacheFields == ["set-cookie", "x-a"])
    #expect(cc.noCache)
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

  /// The named fields would have to be held back until revalidated (RFC 9111 §5.2.2.4);
  /// revalidating every reuse, as unqualified no-cache does, covers them.
  @Test func noCacheWithFieldsRevalidatesEveryReuse() {
    let cc = CacheControl(values: ["no-cache=\"set-cookie, x-a\", max-age=5"])
    #expect(cc.noCache)
    #expect(cc.noCacheFields == ["set-cookie", "x-a"])
    #expect(cc.maxAge == 5)
  }

  /// A quoted-pair is literal: an escaped quote does not end the string, so what follows
  /// it is still read as directives.
  @Test func anEscapedQuoteDoesNotSwallowTheNextDirectives() {
    let cc = CacheControl(values: ["max-age=600, foo=\"\\\"\", no-store"])
    #expect(cc.noStore)
    #expect(cc.maxAge == 600)
    #expect(CacheControl.split("a=\"x\\\",y\", b") == ["a=\"x\\\",y\"", "b"])
  }

  /// Repeated max-age or s-maxage: the first counts (RFC 9111 §4.2.1), not a later one.
  @Test func theFirstOfARepeatedAgeCounts() {
    let cc = CacheControl(values: ["max-age=0, s-maxage=1", "max-age=3600, s-maxage=3600"])
    #expect(cc.maxAge == 0 && cc.sMaxAge == 1)
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
  /// dates across two centuries and leap days included; a day past its month's end is no date.
  @Test func theFixdateReaderAgreesWithTheGeneralParser() {
    var seconds: Int64 = 0
    for _ in 0..<3000 {
      let text = HTTPDate.format(secondsSinceEpoch: seconds)
      #expect(HTTPDate.parseFixdate(text) == seconds, "\(text)")
      #expect(HTTPDate.parseTokens(text) == seconds, "\(text)")
      seconds += 2_111_111 + seconds % 86_399
    }
    for text in [
      "Thu, 29 Feb 2024 23:59:60 GMT", "Tue, 29 Feb 2000 00:00:00 GMT", "Mon, 01 Jan 1900 12:00:00 GMT",
      "Fri, 31 Dec 2100 23:59:59 GMT",
    ] {
      #expect(
        HTTPDate.parseFixdate(text) != nil && HTTPDate.parseFixdate(text) == HTTPDate.parseTokens(text), "\(text)")
    }
    for text in [
      "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:4x:37 GMT", "Sun,  6 Nov 1994 08:49:37 GMT",
      "Sat, 31 Feb 2001 00:00:00 GMT", "Thu, 29 Feb 1900 00:00:00 GMT", "Thu, 31 Jun 2099 00:00:00 GMT",
    ] {
      #expect(HTTPDate.parseFixdate(text) == nil, "\(text)")
    }
    // Nor through the general parser, in any of the three forms.
    for text in ["Sat, 31 Feb 2001 00:00:00 GMT", "Saturday, 31-Feb-01 00:00:00 GMT", "Sat Feb 31 00:00:00 2001"] {
      #expect(HTTPDate.parse(text) == nil, "\(text)")
    }
  }
}
