public import EdgeCDNConfiguration
public import EdgeCDNStore

/// Everything `edge-cdn` reads at startup, from one set of sources: the store (`memory`, `disk`,
/// `tiered`, `shared`) and the proxy (`proxy`). Read through one `SettingsReader` so that the
/// typo check knows every part's keys, and so one precedence (command line > `EDGE_CDN_*` >
/// file > defaults) holds for all of them.
public struct EdgeCDNSettings: Sendable {
  public var store: StoreConfiguration
  public var proxy: ProxyConfiguration
  /// Every setting with its effective value and source, sorted by key (secrets hidden): what
  /// the executable logs at startup.
  public var resolved: [ResolvedSetting]

  /// Reads both parts, refuses unknown keys (in the file, the environment and on the command
  /// line: every option in `sources.arguments` must be a setting), then validates both; every error names the key,
  /// the value, the allowed range and, when the value came from a source, which one.
  public init(reading settings: SettingsReader) throws(ConfigurationError) {
    let store = try StoreConfiguration(reading: settings)
    let proxy = try ProxyConfiguration(reading: settings.scoped(to: "proxy"))
    // edge-cdn passes on only the options its argument parser does not own: every one is a setting.
    try settings.rejectUnknownSettings(includingCommandLine: true)
    do throws(ConfigurationError) {
      try store.validate()
      try proxy.validate()
    } catch {
      throw settings.attachingSource(to: error)
    }
    self.store = store
    self.proxy = proxy
    self.resolved = settings.resolvedSettings
  }

  /// `init(reading:)` from `sources`, with the file read on NIO's thread pool.
  public static func load(from sources: ConfigurationSources) async throws(ConfigurationError) -> EdgeCDNSettings {
    try EdgeCDNSettings(reading: try await SettingsReader.reading(sources))
  }

  /// `init(reading:)` from `sources`, reading the file on the calling thread: for tests and
  /// synchronous start-up code.
  public static func loadBlocking(from sources: ConfigurationSources) throws(ConfigurationError) -> EdgeCDNSettings {
    try EdgeCDNSettings(reading: try SettingsReader(sources: sources))
  }
}
