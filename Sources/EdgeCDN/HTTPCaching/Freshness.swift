public import NIOHTTP1

/// Freshness lifetime and age as RFC 9111 §4.2 defines them.
///
/// Times are whole seconds since the epoch: HTTP dates have no finer resolution, and
/// the Age header is in seconds.
public enum Freshness {
  /// Statuses a cache may give heuristic freshness to (RFC 9110 §15.1).
  public static let heuristicallyCacheable: Set<UInt> = [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]

  /// §4.2.1: s-maxage, then max-age, then Expires − Date, then a heuristic (§4.2.2) of
  /// `heuristicFraction` of the time since Last-Modified, capped at `maxHeuristic`.
  /// Nil when the response has no explicit lifetime and no heuristic applies.
  public static func lifetime(
    status: UInt,
    headers: HTTPHeaders,
    cacheControl: CacheControl,
    responseTime: Int64,
    heuristicFraction: Double = 0.1,
    maxHeuristic: Int64 = 86_400
  ) -> Int64? {
    if let sMaxAge = cacheControl.sMaxAge { return Int64(sMaxAge) }
    if let maxAge = cacheControl.maxAge { return Int64(maxAge) }
    // A max-age that is present but invalid makes the response stale (§4.2.1).
    if cacheControl.hasInvalidAge { return 0 }
    let date = headers.first(name: "date").flatMap(HTTPDate.parse) ?? responseTime
    if let expires = headers.first(name: "expires") {
      // An invalid Expires (like "0") means already expired (§5.3).
      guard let expiry = HTTPDate.parse(expires) else { return 0 }
      return max(0, expiry - date)
    }
    guard heuristicallyCacheable.contains(status) || cacheControl.isPublic,
      let lastModified = headers.first(name: "last-modified").flatMap(HTTPDate.parse), lastModified <= date
    else { return nil }
    return min(maxHeuristic, Int64(Double(date - lastModified) * heuristicFraction))
  }

  /// §4.2.3 corrected_initial_age: the age the response already had when it arrived.
  public static func initialAge(headers: HTTPHeaders, requestTime: Int64, responseTime: Int64) -> Int64 {
    let date = headers.first(name: "date").flatMap(HTTPDate.parse) ?? responseTime
    let apparentAge = max(0, responseTime - date)
    let ageValue = headers.first(name: "age").flatMap { Int64($0.trimmingCharacters) } ?? 0
    let responseDelay = max(0, responseTime - requestTime)
    return max(apparentAge, max(0, ageValue) + responseDelay)
  }

  /// §4.2.3 current_age = corrected_initial_age + resident_time.
  public static func currentAge(initialAge: Int64, responseTime: Int64, now: Int64) -> Int64 {
    initialAge + max(0, now - responseTime)
  }
}

extension String {
  var trimmingCharacters: String { String(Substring(self).trimmingSpaces) }
}
