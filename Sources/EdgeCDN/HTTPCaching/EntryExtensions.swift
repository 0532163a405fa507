/// What the proxy keeps in `CacheMeta.extensions`: the facts RFC 9111 needs later that
/// the meta's own fields do not hold.
///
/// A short text form (`edge-cdn/1;age=3;vary=accept-encoding;gen=...`): a few bytes per
/// object, readable in a hex dump, and tolerant of fields added later.
public struct EntryExtensions: Hashable, Sendable {
  /// corrected_initial_age (RFC 9111 §4.2.3) at `CacheMeta.updated`, in seconds.
  public var initialAge: Int64 = 0
  /// The response forbids serving it stale (must-revalidate, proxy-revalidate, s-maxage, no-cache).
  public var mustRevalidate = false
  /// This entry is a Vary index under the primary key: it names the request fields that
  /// select a variant, and holds no body of its own.
  public var isVaryIndex = false
  /// Lowercased, sorted field names of the response's Vary.
  public var varyNames: [String] = []
  /// Salts the variance of every variant under this index, so variants of a purged index
  /// never become reachable again when a new index is written.
  public var generation: UInt64 = 0
  /// The body size when known at store time (Content-Length), for ranges.
  public var bodySize: Int?

  public init() {}

  static let prefix = "edge-cdn/1"

  public func encoded() -> [UInt8] {
    var s = Self.prefix + ";age=\(initialAge)"
    if mustRevalidate { s += ";mr" }
    if isVaryIndex { s += ";index" }
    if !varyNames.isEmpty { s += ";vary=" + varyNames.joined(separator: ",") }
    if generation != 0 { s += ";gen=\(generation)" }
    if let bodySize { s += ";size=\(bodySize)" }
    return Array(s.utf8)
  }

  /// Decodes; unknown or foreign bytes give the defaults (an entry written by another
  /// cache layer is then treated as a plain response).
  public init(decoding bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    let fields = text.split(separator: ";")
    guard fields.first == Substring(Self.prefix) else { return }
    for field in fields.dropFirst() {
      let (name, value) = CacheControl.nameAndArgument(field)
      switch name {
      case "age": initialAge = value.flatMap { Int64($0) } ?? 0
      case "mr": mustRevalidate = true
      case "index": isVaryIndex = true
      case "vary": varyNames = value.map { $0.split(separator: ",").map(String.init) } ?? []
      case "gen": generation = value.flatMap { UInt64($0) } ?? 0
      case "size": bodySize = value.flatMap { Int($0) }
      default: break
      }
    }
  }
}
