public import EdgeCDNStore
public import NIOHTTP1

/// Vary (RFC 9111 §4.1): the secondary key of a response, from the request fields it names.
///
/// Lookup must find the variance before it has a response. As pingora does, the proxy
/// stores a small Vary index under the primary key (no variance) that names the fields;
/// a lookup reads it first, computes the variance from the request, then looks the
/// variant up. The index's generation salts the hash so a purge of the URL (which
/// removes the index) orphans every variant for good.
public enum Variance {
  /// Lowercased, sorted, unique names of a response's Vary fields; nil for `Vary: *`,
  /// which never matches a later request (§4.1).
  public static func names(of headers: HTTPHeaders) -> [String]? {
    var names = Set<String>()
    for line in headers[canonicalForm: "vary"] {
      let name = line.trimmingSpaces.lowercased()
      if name == "*" { return nil }
      if !name.isEmpty { names.insert(name) }
    }
    return names.sorted()
  }

  /// The variance of `request` for the fields `names`, salted by `generation`.
  /// Field values are combined as §4.1 allows (lines joined with ", ", whitespace trimmed).
  public static func hash(names: [String], generation: UInt64, request: HTTPHeaders) -> CacheHash {
    var bytes: [UInt8] = []
    withUnsafeBytes(of: generation.littleEndian) { bytes.append(contentsOf: $0) }
    for name in names {
      bytes.append(contentsOf: name.utf8)
      bytes.append(0x3a)
      let value = request[name].map { String(Substring($0).trimmingSpaces) }.joined(separator: ", ")
      bytes.append(contentsOf: value.utf8)
      bytes.append(0x0a)
    }
    return CacheHash.blake2b128(bytes)
  }
}
