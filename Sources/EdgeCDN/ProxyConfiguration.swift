public import EdgeCDNStore
public import Logging

/// Everything the proxy needs to run, validated once at start-up; each error names the
/// setting, its value and what is allowed (the store's `ConfigurationError`).
public struct ProxyConfiguration: Sendable, Hashable {
  /// host:port pair.
  public struct Address: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
      self.host = host
      self.port = port
    }

    /// Parses `host:port`, `:port` (all interfaces) or `[v6]:port`.
    public init(parsing text: String, setting: String) throws(ConfigurationError) {
      guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
        (0...65535).contains(port)
      else { throw ConfigurationError(setting: setting, value: text, allowed: "host:port with port 0...65535") }
      var host = String(text[..<colon])
      if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
      self.host = host.isEmpty ? "0.0.0.0" : host
      self.port = port
    }

    public var description: String { "\(host):\(port)" }
  }

  /// The origin, from `http://host[:port]` (https is not supported: the proxy speaks
  /// plain HTTP/1.1 to an origin on a trusted network, as a CDN edge's shield does).
  public struct Origin: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
      self.host = host
      self.port = port
    }

    public init(url: String) throws(ConfigurationError) {
      try self.init(url: url, setting: "proxy.origin.url")
    }

    /// Parses `url`; errors name `setting`, the key the URL was read from.
    public init(url: String, setting: String) throws(ConfigurationError) {
      let allowed = "an http://host[:port] URL"
      guard url.hasPrefix("http://") else { throw ConfigurationError(setting: setting, value: url, allowed: allowed) }
      var rest = url.dropFirst(7)
      if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
      guard !rest.isEmpty else { throw ConfigurationError(setting: setting, value: url, allowed: allowed) }
      if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
        guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
          throw ConfigurationError(setting: setting, value: url, allowed: allowed + " with port 1...65535")
        }
        self.host = String(rest[..<colon])
        self.port = port
      } else {
        self.host = String(rest)
        self.port = 80
      }
      if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
      guard !host.isEmpty else { throw ConfigurationError(setting: setting, value: url, allowed: allowed) }
    }

    public var description: String { "http://\(host):\(port)" }
  }

  public var origin: Origin
  public var listen: Address
  /// Nil: no admin listener.
  public var adminListen: Address?
  /// Bearer token for PURGE and the admin purge API; nil disables purging.
  public var purgeToken: String?
  /// Cache-Status cache name (RFC 9211 §2).
  public var cacheName = "edge-cdn"
  /// Request line (method + target) limit: longer gets 414 and the connection closed.
  public var maxRequestLineBytes = 8 << 10
  /// Header section limit: larger gets 431 and the connection closed. NIOHTTP1's parser
  /// refuses header sections over 80 KiB on its own, so that is the ceiling.
  public var maxHeaderBytes = 32 << 10
  /// Request body limit (bodies of methods passed to the origin): larger gets 413.
  public var maxRequestBodyBytes = 16 << 20
  /// A connection with neither reads nor writes for this long, in the client's turn, is
  /// closed (`ConnectionIdleTimer`: waiting on the origin is not the client's idleness).
  public var idleTimeoutSeconds: Int64 = 60
  public var originConnectTimeoutSeconds: Int64 = 5
  public var originResponseTimeoutSeconds: Int64 = 30
  public var originMaxIdleConnections = 64
  /// How long a request waits for another's fetch of the same key before fetching itself.
  public var cacheLockTimeoutMilliseconds: Int64 = 5_000
  /// Responses larger than this (by Content-Length) are passed through, not stored.
  public var maxCacheableObjectBytes = 16 << 20
  /// RFC 9111 §4.2.2 heuristic freshness: fraction of the time since Last-Modified, and cap.
  public var heuristicFraction = 0.1
  public var maxHeuristicSeconds: Int64 = 86_400
  /// How long graceful shutdown waits for responses in flight before closing them.
  public var drainTimeoutSeconds: Int64 = 10
  /// Log one line per request at info level (off by default: the hot path logs at debug).
  public var accessLogAtInfo = false
  /// The executable's log level; the proxy library itself logs through the logger it is given.
  public var logLevel: Logger.Level = .info
  /// Fresh RAM hits with bodies up to this size are answered on the event loop, without
  /// a task (the rest take the async path); 0 turns that off. The bodies are shared
  /// buffers, so the size bounds what one response queues, not a copy.
  public var immediateHitMaxBodyBytes = 1 << 20

  public init(origin: Origin, listen: Address = Address(host: "127.0.0.1", port: 8081), adminListen: Address? = nil) {
    self.origin = origin
    self.listen = listen
    self.adminListen = adminListen
  }

  /// Ranges that `validate()` enforces (and docs/configuration.md lists).
  public static let maxRequestLineRange = 64...(1 << 20)
  /// Bounds what one fast-path response queues on a connection in one go (the body is a shared buffer).
  public static let immediateHitMaxBodyRange = 0...(64 << 20)
  /// NIOHTTP1's parser refuses header sections over 80 KiB on its own: that is the ceiling.
  public static let maxHeaderRange = 1024...(80 << 10)
  public static let idleTimeoutSecondsRange: ClosedRange<Int64> = 1...86_400
  public static let originConnectTimeoutSecondsRange: ClosedRange<Int64> = 1...3_600
  public static let originResponseTimeoutSecondsRange: ClosedRange<Int64> = 1...3_600
  public static let originMaxIdleConnectionsRange = 0...65_536
  public static let cacheLockTimeoutMillisecondsRange: ClosedRange<Int64> = 1...600_000
  /// Up to a year: RFC 9111 §4.2.2 suggests no cap, a cap of zero turns heuristics off.
  public static let maxHeuristicSecondsRange: ClosedRange<Int64> = 0...31_536_000
  public static let drainTimeoutSecondsRange: ClosedRange<Int64> = 1...3_600

  /// Checks every setting; each error names the key an operator sets (`proxy.limits.idleTimeout`),
  /// the value in that key's units and the allowed range.
  public func validate() throws(ConfigurationError) {
    func time(_ value: Int64, unit: Int64) -> String {
      let (nanoseconds, overflow) = value.multipliedReportingOverflow(by: unit)
      guard value >= 0, !overflow else { return "\(value)" + (unit == 1_000_000 ? "ms" : "s") }
      return DurationSetting(nanoseconds: nanoseconds).description
    }
    func seconds(_ value: Int64, _ range: ClosedRange<Int64>, _ setting: String) throws(ConfigurationError) {
      guard range.contains(value) else {
        throw ConfigurationError(
          setting: setting, value: time(value, unit: 1_000_000_000),
          allowed: "\(time(range.lowerBound, unit: 1_000_000_000))...\(time(range.upperBound, unit: 1_000_000_000))")
      }
    }
    func bytes(
      _ value: Int, _ range: ClosedRange<Int>, _ setting: String, _ note: String = ""
    ) throws(ConfigurationError) {
      guard range.contains(value) else {
        let lower = ByteSize(bytes: range.lowerBound)
        let allowed = range.upperBound == .max ? "at least \(lower)" : "\(lower)...\(ByteSize(bytes: range.upperBound))"
        throw ConfigurationError(
          setting: setting, value: value < 0 ? "\(value)" : "\(ByteSize(bytes: value))", allowed: allowed + note)
      }
    }
    try bytes(maxRequestLineBytes, Self.maxRequestLineRange, "proxy.limits.maxRequestLine")
    try bytes(maxHeaderBytes, Self.maxHeaderRange, "proxy.limits.maxHeaderSize", " (the HTTP parser's ceiling)")
    try bytes(maxRequestBodyBytes, 0...Int.max, "proxy.limits.maxBodySize")
    try bytes(immediateHitMaxBodyBytes, Self.immediateHitMaxBodyRange, "proxy.cache.immediateHitMaxSize")
    try seconds(idleTimeoutSeconds, Self.idleTimeoutSecondsRange, "proxy.limits.idleTimeout")
    try seconds(originConnectTimeoutSeconds, Self.originConnectTimeoutSecondsRange, "proxy.origin.connectTimeout")
    try seconds(originResponseTimeoutSeconds, Self.originResponseTimeoutSecondsRange, "proxy.origin.responseTimeout")
    guard Self.cacheLockTimeoutMillisecondsRange.contains(cacheLockTimeoutMilliseconds) else {
      throw ConfigurationError(
        setting: "proxy.cache.lockTimeout", value: time(cacheLockTimeoutMilliseconds, unit: 1_000_000),
        allowed: "\(time(Self.cacheLockTimeoutMillisecondsRange.lowerBound, unit: 1_000_000))..."
          + "\(time(Self.cacheLockTimeoutMillisecondsRange.upperBound, unit: 1_000_000))")
    }
    try seconds(drainTimeoutSeconds, Self.drainTimeoutSecondsRange, "proxy.shutdown.drainTimeout")
    guard Self.originMaxIdleConnectionsRange.contains(originMaxIdleConnections) else {
      throw ConfigurationError(
        setting: "proxy.origin.maxIdleConnections", value: "\(originMaxIdleConnections)",
        allowed: "\(Self.originMaxIdleConnectionsRange.lowerBound)...\(Self.originMaxIdleConnectionsRange.upperBound)")
    }
    try bytes(maxCacheableObjectBytes, 1...Int.max, "proxy.cache.maxObjectSize")
    guard (0.0...1.0).contains(heuristicFraction) else {
      throw ConfigurationError(
        setting: "proxy.cache.heuristicFraction", value: "\(heuristicFraction)", allowed: "0...1")
    }
    try seconds(maxHeuristicSeconds, Self.maxHeuristicSecondsRange, "proxy.cache.maxHeuristicFreshness")
    if let purgeToken, purgeToken.count < 8 {
      throw ConfigurationError(
        setting: "proxy.purgeToken", value: "(\(purgeToken.count) characters)", allowed: "at least 8 characters")
    }
    guard !cacheName.isEmpty, cacheName.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
      throw ConfigurationError(
        setting: "proxy.cache.name", value: "\"\(cacheName)\"", allowed: "a token of letters, digits, - _ .")
    }
  }
}
