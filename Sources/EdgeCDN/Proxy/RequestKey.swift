import EdgeCDNStore
import NIOHTTP1

/// The cache key of a request: host + target, the host lowercased (RFC 9110 §4.2.3).
/// One definition for the async proxy and the event-loop fast path, which must agree.
enum RequestKey {
  static func of(_ head: HTTPRequestHead) -> CacheKey {
    of(host: host(head.headers.first(name: "host")), uri: head.uri)
  }

  /// A Host field's value without the trailing spaces and tabs NIOHTTP1 leaves in it
  /// (optional whitespace, not part of the value): "a " and "a" name one host.
  static func host(_ value: String?) -> String? {
    guard let value, let last = value.utf8.last, last == 0x20 || last == 0x09 else { return value }
    var bytes = Array(value.utf8)
    while let end = bytes.last, end == 0x20 || end == 0x09 { bytes.removeLast() }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Builds the primary key's bytes in one buffer; a non-ASCII host is lowercased as a
  /// String would be, so both paths name the same object.
  static func of(host: String?, uri: String) -> CacheKey {
    guard let host, !host.utf8.contains(where: { $0 >= 0x80 }) else {
      return CacheKey(primary: (host?.lowercased() ?? "") + uri)
    }
    var primary: [UInt8] = []
    primary.reserveCapacity(host.utf8.count + uri.utf8.count)
    for byte in host.utf8 { primary.append(byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte) }
    primary.append(contentsOf: uri.utf8)
    return CacheKey(primary: primary)
  }

  /// The key of a request read from the wire (`WireRequest`): `host` is ASCII (the
  /// scanner takes nothing else), empty when the request has none.
  static func of(host: UnsafeRawBufferPointer, target: UnsafeRawBufferPointer) -> CacheKey {
    var primary: [UInt8] = []
    primary.reserveCapacity(host.count + target.count)
    for byte in host { primary.append(byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte) }
    primary.append(contentsOf: target)
    return CacheKey(primary: primary)
  }
}
