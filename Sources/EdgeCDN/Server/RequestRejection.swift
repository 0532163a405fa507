import NIOHTTP1

/// Requests the server refuses before serving them, on every path (the async one and
/// `ImmediateResponseHandler`'s; `WireResponder` leaves such requests to those).
enum RequestRejection {
  /// 414 for a request line over its limit, 431 for a header section over its limit, 400
  /// for a Host that is not a host (see `ASCII.isHostByte`), for more than one Host, and
  /// for an HTTP/1.1 request without one (RFC 9112 §3.2: a server MUST answer 400; the
  /// cache key starts with the host, so a missing or doubled one has no sure key).
  static func status(
    of head: HTTPRequestHead, maxRequestLineBytes: Int, maxHeaderBytes: Int
  ) -> HTTPResponseStatus? {
    var headerBytes = 0
    var hostIsValid = true
    var hostCount = 0
    // One pass, no allocation: it runs for every request the event-loop path behind the
    // pipelining handler sees, then again on the async path.
    for (name, value) in head.headers {
      headerBytes += name.utf8.count + value.utf8.count + 4
      if ASCII.equals(name.utf8, "host") {
        hostCount += 1
        hostIsValid = hostIsValid && (RequestKey.host(value) ?? "").utf8.allSatisfy(ASCII.isHostByte)
      }
    }
    if !hostIsValid || hostCount > 1 || (hostCount == 0 && head.version == .http1_1) { return .badRequest }
    if head.method.rawValue.utf8.count + head.uri.utf8.count + 10 > maxRequestLineBytes { return .uriTooLong }
    if headerBytes > maxHeaderBytes { return .requestHeaderFieldsTooLarge }
    return nil
  }
}
