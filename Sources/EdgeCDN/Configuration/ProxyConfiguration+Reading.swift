public import EdgeCDNConfiguration
public import EdgeCDNStore
import Logging

extension ProxyConfiguration {
  /// The listen address of `edge-cdn` when no source sets `proxy.listen`.
  public static let defaultListen = "127.0.0.1:8081"
  /// The admin listen address of `edge-cdn` when no source sets `proxy.adminListen`.
  public static let defaultAdminListen = "127.0.0.1:9091"
  /// What `proxy.adminListen` takes to run without an admin listener.
  public static let adminListenDisabled = "none"

  /// Reads the proxy's settings from a reader scoped to `proxy` (see docs/configuration.md,
  /// "proxy"). Every key is read before the origin is required, so a missing origin does not hide
  /// a malformed value elsewhere. Values are converted to the struct's units here; whole-second
  /// settings refuse "1500ms" rather than round it. Ranges are left to `validate()`, which names
  /// the same keys.
  public init(reading settings: SettingsReader) throws(ConfigurationError) {
    let defaults = ProxyConfiguration(origin: Origin(host: "127.0.0.1", port: 80))
    let origin = settings.scoped(to: "origin")
    let cache = settings.scoped(to: "cache")
    let limits = settings.scoped(to: "limits")
    let shutdown = settings.scoped(to: "shutdown")

    let url = try origin.optionalString("url")
    let connectTimeout = try Self.wholeSeconds(origin, "connectTimeout", default: defaults.originConnectTimeoutSeconds)
    let responseTimeout = try Self.wholeSeconds(
      origin, "responseTimeout", default: defaults.originResponseTimeoutSeconds)
    let maxIdleConnections = try origin.int("maxIdleConnections", default: defaults.originMaxIdleConnections)
    let listenText = try settings.string("listen", default: Self.defaultListen)
    let adminText = try settings.string("adminListen", default: Self.defaultAdminListen)
    let purgeToken = try settings.optionalSecret("purgeToken")
    let accessLog = try settings.bool("accessLog", default: defaults.accessLogAtInfo)
    let logLevel = try settings.choice("logLevel", default: defaults.logLevel)
    let cacheName = try cache.string("name", default: defaults.cacheName)
    let lockTimeout = try cache.duration(
      "lockTimeout", default: .milliseconds(defaults.cacheLockTimeoutMilliseconds))
    let maxObjectSize = try cache.size("maxObjectSize", default: ByteSize(bytes: defaults.maxCacheableObjectBytes))
    let immediateHitMaxSize = try cache.size(
      "immediateHitMaxSize", default: ByteSize(bytes: defaults.immediateHitMaxBodyBytes))
    let heuristicFraction = try cache.double("heuristicFraction", default: defaults.heuristicFraction)
    let maxHeuristic = try Self.wholeSeconds(cache, "maxHeuristicFreshness", default: defaults.maxHeuristicSeconds)
    let maxRequestLine = try limits.size("maxRequestLine", default: ByteSize(bytes: defaults.maxRequestLineBytes))
    let maxHeaderSize = try limits.size("maxHeaderSize", default: ByteSize(bytes: defaults.maxHeaderBytes))
    let maxBodySize = try limits.size("maxBodySize", default: ByteSize(bytes: defaults.maxRequestBodyBytes))
    let idleTimeout = try Self.wholeSeconds(limits, "idleTimeout", default: defaults.idleTimeoutSeconds)
    let drainTimeout = try Self.wholeSeconds(shutdown, "drainTimeout", default: defaults.drainTimeoutSeconds)

    guard let url else {
      throw ConfigurationError(
        setting: origin.fullKey("url"), value: "(not set)",
        allowed: "an http://host[:port] URL, required: --origin URL, EDGE_CDN_PROXY_ORIGIN_URL or "
          + "{\"proxy\": {\"origin\": {\"url\": ...}}} in the file")
    }
    func parsing<T>(_ parse: () throws(ConfigurationError) -> T) throws(ConfigurationError) -> T {
      do throws(ConfigurationError) { return try parse() } catch { throw settings.attachingSource(to: error) }
    }
    let originValue = try parsing { () throws(ConfigurationError) in
      try Origin(url: url, setting: origin.fullKey("url"))
    }
    let listen = try parsing { () throws(ConfigurationError) in
      try Address(parsing: listenText, setting: settings.fullKey("listen"))
    }
    var adminListen: Address?
    if adminText.lowercased() != Self.adminListenDisabled {
      adminListen = try parsing { () throws(ConfigurationError) in
        try Address(parsing: adminText, setting: settings.fullKey("adminListen"))
      }
    }

    self.init(origin: originValue, listen: listen, adminListen: adminListen)
    self.purgeToken = purgeToken
    self.cacheName = cacheName
    self.maxRequestLineBytes = maxRequestLine.bytes
    self.maxHeaderBytes = maxHeaderSize.bytes
    self.maxRequestBodyBytes = maxBodySize.bytes
    self.idleTimeoutSeconds = idleTimeout
    self.originConnectTimeoutSeconds = connectTimeout
    self.originResponseTimeoutSeconds = responseTimeout
    self.originMaxIdleConnections = maxIdleConnections
    self.cacheLockTimeoutMilliseconds = try Self.wholeMilliseconds(lockTimeout, cache, "lockTimeout")
    self.maxCacheableObjectBytes = maxObjectSize.bytes
    self.immediateHitMaxBodyBytes = immediateHitMaxSize.bytes
    self.heuristicFraction = heuristicFraction
    self.maxHeuristicSeconds = maxHeuristic
    self.drainTimeoutSeconds = drainTimeout
    self.accessLogAtInfo = accessLog
    self.logLevel = logLevel
  }

  /// A duration setting kept in whole seconds by the struct (and by the NIO timers it feeds).
  static func wholeSeconds(
    _ settings: SettingsReader, _ key: String, default defaultValue: Int64
  ) throws(ConfigurationError) -> Int64 {
    let value = try settings.duration(key, default: .seconds(defaultValue))
    guard value.nanoseconds % 1_000_000_000 == 0 else {
      throw settings.attachingSource(
        to: ConfigurationError(
          setting: settings.fullKey(key), value: "\"\(value)\"", allowed: "a whole number of seconds, e.g. 30s or 2m"))
    }
    return value.nanoseconds / 1_000_000_000
  }

  static func wholeMilliseconds(
    _ value: DurationSetting, _ settings: SettingsReader, _ key: String
  ) throws(ConfigurationError) -> Int64 {
    guard value.nanoseconds % 1_000_000 == 0 else {
      throw settings.attachingSource(
        to: ConfigurationError(
          setting: settings.fullKey(key), value: "\"\(value)\"",
          allowed: "a whole number of milliseconds, e.g. 500ms or 5s"))
    }
    return value.nanoseconds / 1_000_000
  }
}
