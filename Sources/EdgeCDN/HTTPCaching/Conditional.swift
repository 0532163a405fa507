public import NIOHTTP1

/// Conditional requests (RFC 9110 §13) as a cache answers and sends them.
public enum Conditional {
  /// Whether a client's conditional GET/HEAD is answered 304 by the stored response:
  /// If-None-Match with weak comparison (§13.1.2) wins over If-Modified-Since (§13.1.3).
  public static func isNotModified(request: HTTPHeaders, stored: HTTPHeaders) -> Bool {
    let inm = request[canonicalForm: "if-none-match"]
    if !inm.isEmpty {
      guard let etag = stored.first(name: "etag") else { return false }
      return inm.contains { $0 == "*" || weakEqual(String($0), etag) }
    }
    guard let since = request.first(name: "if-modified-since").flatMap(HTTPDate.parse),
      let lastModified = stored.first(name: "last-modified").flatMap(HTTPDate.parse)
    else { return false }
    return lastModified <= since
  }

  /// Weak comparison: equal opaque tags, ignoring a `W/` prefix.
  public static func weakEqual(_ a: String, _ b: String) -> Bool {
    func opaque(_ s: String) -> Substring {
      let t = Substring(s).trimmingSpaces
      return t.hasPrefix("W/") ? t.dropFirst(2) : t
    }
    return opaque(a) == opaque(b)
  }

  /// The validators to revalidate a stored response with (§4.3.1).
  public static func validators(for stored: HTTPHeaders) -> HTTPHeaders {
    var headers = HTTPHeaders()
    if let etag = stored.first(name: "etag") { headers.add(name: "If-None-Match", value: etag) }
    if let lastModified = stored.first(name: "last-modified") {
      headers.add(name: "If-Modified-Since", value: lastModified)
    }
    return headers
  }

  /// The fields of a 304 that replace the stored ones (§4.3.4): all but the framing ones.
  public static func merge(notModified: HTTPHeaders, into stored: HTTPHeaders) -> HTTPHeaders {
    var merged = stored
    let skip: Set<String> = ["content-length", "transfer-encoding", "content-encoding", "content-range"]
    let names = Set(notModified.map { $0.name.lowercased() }).subtracting(skip).subtracting(HopByHop.names)
    for name in names {
      merged.remove(name: name)
      for value in notModified[name] { merged.add(name: name, value: value) }
    }
    return merged
  }

  /// Fields a 304 from cache carries (RFC 9110 §15.4.5).
  public static let notModifiedFields = [
    "cache-control", "content-location", "date", "etag", "expires", "last-modified", "vary",
  ]
}

/// Hop-by-hop fields (RFC 9110 §7.6.1): never stored, never forwarded.
public enum HopByHop {
  public static let names: Set<String> = [
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authenticate", "proxy-authorization",
  ]

  /// `headers` without hop-by-hop fields, including those the Connection field names.
  public static func stripped(_ headers: HTTPHeaders) -> HTTPHeaders {
    var named = names
    for line in headers[canonicalForm: "connection"] { named.insert(line.trimmingSpaces.lowercased()) }
    var out = HTTPHeaders()
    out.reserveCapacity(headers.count)
    for (name, value) in headers where !named.contains(name.lowercased()) {
      out.add(name: name, value: value)
    }
    return out
  }
}
