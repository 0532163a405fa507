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
  ///
  /// Names keep their spelling (HTTPHeaders compares without case but stores what it was
  /// given): a replaced field keeps the stored name, at the place of its first stored line;
  /// a field the stored response lacked comes last, spelt as the 304 spelt it. A cache
  /// that rewrote names would turn an origin's `Server` into `server` after a revalidation.
  public static func merge(notModified: HTTPHeaders, into stored: HTTPHeaders) -> HTTPHeaders {
    let skip: Set<String> = ["content-length", "transfer-encoding", "content-encoding", "content-range"]
    // The 304's fields by lowercased name, in the order they first appear.
    var order: [String] = []
    var updates: [String: [(name: String, value: String)]] = [:]
    for (name, value) in notModified {
      let lower = name.lowercased()
      guard !skip.contains(lower), !HopByHop.names.contains(lower) else { continue }
      if updates[lower] == nil { order.append(lower) }
      updates[lower, default: []].append((name, value))
    }
    guard !updates.isEmpty else { return stored }
    var merged = HTTPHeaders()
    merged.reserveCapacity(stored.count + notModified.count)
    var placed: Set<String> = []
    for (name, value) in stored {
      let lower = name.lowercased()
      guard let replacement = updates[lower] else {
        merged.add(name: name, value: value)
        continue
      }
      guard placed.insert(lower).inserted else { continue }
      for field in replacement { merged.add(name: name, value: field.value) }
    }
    for lower in order where !placed.contains(lower) {
      for field in updates[lower] ?? [] { merged.add(name: field.name, value: field.value) }
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
  ///
  /// A name is lowercased and looked up only when its length is one of the named ones:
  /// most fields of a response (Date, Content-Length, ETag, ...) are passed over by length
  /// alone, which matters since every miss strips its response and its request.
  public static func stripped(_ headers: HTTPHeaders) -> HTTPHeaders {
    var named = names
    var lengths = Self.lengths
    for line in headers[canonicalForm: "connection"] {
      let name = line.trimmingSpaces.lowercased()
      named.insert(name)
      lengths |= lengthBit(name.utf8.count)
    }
    var out = HTTPHeaders()
    out.reserveCapacity(headers.count)
    for (name, value) in headers
    where lengths & lengthBit(name.utf8.count) == 0 || !named.contains(name.lowercased()) {
      out.add(name: name, value: value)
    }
    return out
  }

  /// One bit per name length below 63; longer names share the last bit.
  private static func lengthBit(_ count: Int) -> UInt64 { 1 << UInt64(min(count, 63)) }

  private static let lengths: UInt64 = names.reduce(0) { $0 | lengthBit($1.utf8.count) }
}
