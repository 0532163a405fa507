import NIOHTTP1

/// Requests the server refuses before serving them, on every path (the async one and
/// `ImmediateResponseHandler`'s; `WireResponder` leaves such requests to those).
enum RequestRejection {
  /// 414 for a request line over its limit, 431 for a header section over its limit, 400
  /// for a Host that is not a host (see `ASCII.isHostByte`).
  static func status(
    of head: HTTPRequestHead, maxRequestLineBytes: Int, maxHeaderBytes: Int
  ) -> HTTPResponseStatus? {
    for host in head.headers["host"] where !(RequestKey.host(host) ?? "").utf8.allSatisfy(ASCII.isHostByte) {
      return .badRequest
    }
    if head.method.rawValue.utf8.count + head.uri.utf8.count + 10 > maxRequestLineBytes { return .uriTooLong }
    var headerBytes = 0
    for (name, value) in head.headers { headerBytes += name.utf8.count + value.utf8.count + 4 }
    if headerBytes > maxHeaderBytes { return .requestHeaderFieldsTooLarge }
    return nil
  }
}
