public import NIOHTTP1

/// Whether a shared cache may store a response (RFC 9111 §3), and for how long.
public enum Cacheability {
  /// How a storable response is kept.
  public struct Plan: Hashable, Sendable {
    /// Freshness lifetime in seconds (§4.2.1), before subtracting the initial age.
    public var lifetime: Int64
    public var initialAge: Int64
    public var staleWhileRevalidate: Int64
    public var staleIfError: Int64
    public var mustRevalidate: Bool
    /// The Vary field names, empty for no Vary.
    public var varyNames: [String]
  }

  public enum Decision: Hashable, Sendable {
    case store(Plan)
    /// Why not, as a short token for Cache-Status `detail` and logs.
    case doNotStore(reason: String)
  }

  /// Request methods whose responses the proxy caches.
  public static func isCacheableMethod(_ method: HTTPMethod) -> Bool {
    method == .GET || method == .HEAD
  }

  /// Decides for a response to a GET.
  ///
  /// - Authorization: stored only with s-maxage, public or must-revalidate (§3.5).
  /// - Set-Cookie: not stored. RFC 9111 §7.3 lets a cache store it but warns against
  ///   sharing it; nginx and Varnish by default do not cache such responses, and a CDN
  ///   handing one user's session cookie to another is the worst failure it can have.
  /// - no-cache: stored, but stale at once and not servable stale (§5.2.2.4).
  public static func decide(
    status: UInt,
    responseHeaders: HTTPHeaders,
    requestHeaders: HTTPHeaders,
    requestTime: Int64,
    responseTime: Int64,
    heuristicFraction: Double = 0.1,
    maxHeuristic: Int64 = 86_400
  ) -> Decision {
    let requestCC = CacheControl(values: requestHeaders[canonicalForm: "cache-control"].map(String.init))
    if requestCC.noStore { return .doNotStore(reason: "request-no-store") }
    guard status >= 200, status != 206, status != 304, status < 600 else {
      return .doNotStore(reason: "status-\(status)")
    }
    let cc = CacheControl(values: responseHeaders[canonicalForm: "cache-control"].map(String.init))
    if cc.noStore { return .doNotStore(reason: "no-store") }
    if cc.isPrivate { return .doNotStore(reason: "private") }
    if responseHeaders.contains(name: "set-cookie") { return .doNotStore(reason: "set-cookie") }
    if requestHeaders.contains(name: "authorization"), cc.sMaxAge == nil, !cc.isPublic, !cc.mustRevalidate {
      return .doNotStore(reason: "authorization")
    }
    guard let varyNames = Variance.names(of: responseHeaders) else { return .doNotStore(reason: "vary-star") }
    let explicit = cc.sMaxAge != nil || cc.maxAge != nil || responseHeaders.contains(name: "expires")
    if !explicit, !Freshness.heuristicallyCacheable.contains(status), !cc.isPublic {
      return .doNotStore(reason: "status-\(status)")
    }
    let hasValidator = responseHeaders.contains(name: "etag") || responseHeaders.contains(name: "last-modified")
    // no-cache with a validator is stored to be revalidated on every use (§5.2.2.4).
    guard
      var lifetime = Freshness.lifetime(
        status: status, headers: responseHeaders, cacheControl: cc, responseTime: responseTime,
        heuristicFraction: heuristicFraction, maxHeuristic: maxHeuristic) ?? (cc.noCache && hasValidator ? 0 : nil)
    else { return .doNotStore(reason: "no-freshness") }
    let mustRevalidate = cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge != nil || cc.noCache
    if cc.noCache { lifetime = 0 }
    // A response stale on arrival with no validator can never be reused: not worth storing.
    let initialAge = Freshness.initialAge(
      headers: responseHeaders, requestTime: requestTime, responseTime: responseTime)
    let staleWhileRevalidate = mustRevalidate ? 0 : Int64(cc.staleWhileRevalidate ?? 0)
    let staleIfError = mustRevalidate ? 0 : Int64(cc.staleIfError ?? 0)
    if lifetime <= initialAge, !hasValidator, staleIfError == 0, staleWhileRevalidate == 0 {
      return .doNotStore(reason: "stale-without-validator")
    }
    return .store(
      Plan(
        lifetime: lifetime, initialAge: initialAge, staleWhileRevalidate: staleWhileRevalidate,
        staleIfError: staleIfError, mustRevalidate: mustRevalidate, varyNames: varyNames))
  }
}
