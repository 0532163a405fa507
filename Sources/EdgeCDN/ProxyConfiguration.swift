public import EdgeCDNStore

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
      let allowed = "an http://host[:port] URL"
      guard url.hasPrefix("http://") else { throw ConfigurationError(setting: "origin", value: url, allowed: allowed) }
      var rest = url.dropFirst(7)
      if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
      guard !rest.isEmpty else { throw ConfigurationError(setting: "origin", value: url, allowed: allowed) }
      if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
        guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
          throw ConfigurationError(setting: "origin", value: url, allowed: allowed + " with port 1...65535")
        }
        self.host = String(rest[..<colon])
        self.port = port
      } else {
        self.host = String(rest)
        self.port = 80
      }
      if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
      guard !host.isEmpty else { throw ConfigurationError(setting: "origin", value: url, allowed: allowed) }
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
  /// A connection with neither reads nor writes for this long is closed.
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
  /// Fresh RAM hits with bodies up to this size are answered on the event loop, without
  /// a task (the rest take the async path); 0 turns that off. The bodies are shared
  /// buffers, so the size bounds what one response queues, not a copy.
  public var immediateHitMaxBodyBytes = 1 << 20

  public init(origin: Origin, listen: Address = Address(host: "127.0.0.1", port: 8081), adminListen: Address? = nil) {
    self.origin = origin
    self.listen = listen
    self.adminListen = adminListen
  }

  public func validate() throws(ConfigurationError) {
    func positive(_ value: Int64, _ setting: String) throws(ConfigurationError) {
      guard value > 0 else { throw ConfigurationError(setting: setting, value: "\(value)", allowed: "> 0") }
    }
    guard (64...(1 << 20)).contains(maxRequestLineBytes) else {
      throw ConfigurationError(
        setting: "limits.maxRequestLineBytes", value: "\(maxRequestLineBytes)", allowed: "64...1048576")
    }
    guard (1024...(80 << 10)).contains(maxHeaderBytes) else {
      throw ConfigurationError(
        setting: "limits.maxHeaderBytes", value: "\(maxHeaderBytes)", allowed: "1024...81920 (the parser's ceiling)")
    }
    guard maxRequestBodyBytes >= 0 else {
      throw ConfigurationError(setting: "limits.maxRequestBodyBytes", value: "\(maxRequestBodyBytes)", allowed: ">= 0")
    }
    try positive(idleTimeoutSeconds, "limits.idleTimeoutSeconds")
    try positive(originConnectTimeoutSeconds, "origin.connectTimeoutSeconds")
    try positive(originResponseTimeoutSeconds, "origin.responseTimeoutSeconds")
    try positive(cacheLockTimeoutMilliseconds, "cache.lockTimeoutMilliseconds")
    try positive(drainTimeoutSeconds, "shutdown.drainTimeoutSeconds")
    guard originMaxIdleConnections >= 0 else {
      throw ConfigurationError(
        setting: "origin.maxIdleConnections", value: "\(originMaxIdleConnections)", allowed: ">= 0")
    }
    guard maxCacheableObjectBytes > 0 else {
      throw ConfigurationError(
        setting: "cache.maxCacheableObjectBytes", value: "\(maxCacheableObjectBytes)", allowed: "> 0")
    }
    guard (0.0...1.0).contains(heuristicFraction) else {
      throw ConfigurationError(setting: "cache.heuristicFraction", value: "\(heuristicFraction)", allowed: "0...1")
    }
    if let purgeToken, purgeToken.count < 8 {
      throw ConfigurationError(
        setting: "purgeToken", value: "(\(purgeToken.count) characters)", allowed: "at least 8 characters")
    }
    guard !cacheName.isEmpty, cacheName.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
      throw ConfigurationError(setting: "cacheName", value: cacheName, allowed: "a token of letters, digits, - _ .")
    }
  }
}
