/// The Cache-Status response field (RFC 9211) for this cache.
public struct CacheStatus: Hashable, Sendable, CustomStringConvertible {
  /// RFC 9211 §2.2 `fwd` reasons.
  public enum Forward: String, Hashable, Sendable {
    case bypass, method, uriMiss = "uri-miss", varyMiss = "vary-miss", miss, request, stale, partial
  }

  public var cacheName: String
  public var hit: Bool
  public var forward: Forward?
  public var forwardStatus: Int?
  /// Remaining freshness in seconds; negative when served stale.
  public var ttl: Int64?
  public var stored: Bool
  /// This request waited for another's origin fetch (coalesced).
  public var collapsed: Bool
  public var detail: String?
  /// Not part of the field: the request counter this request incremented last, which
  /// labels its latency observation (`ProxyMetrics`). Nil for a request no counter saw.
  var outcome: ProxyCounters.Kind?

  public init(
    cacheName: String = "edge-cdn", hit: Bool = false, forward: Forward? = nil, forwardStatus: Int? = nil,
    ttl: Int64? = nil, stored: Bool = false, collapsed: Bool = false, detail: String? = nil
  ) {
    self.cacheName = cacheName
    self.hit = hit
    self.forward = forward
    self.forwardStatus = forwardStatus
    self.ttl = ttl
    self.stored = stored
    self.collapsed = collapsed
    self.detail = detail
  }

  public var description: String {
    var s = cacheName
    if hit { s += "; hit" }
    if let forward { s += "; fwd=\(forward.rawValue)" }
    if let forwardStatus { s += "; fwd-status=\(forwardStatus)" }
    if let ttl { s += "; ttl=\(ttl)" }
    if stored { s += "; stored" }
    if collapsed { s += "; collapsed" }
    if let detail { s += "; detail=\(detail)" }
    return s
  }
}
