public import EdgeCDNStore

extension StoreConfiguration {
  /// Reads every tier's part through `settings`, one scoped reader per tier. A tier adds one line
  /// here and one `init(reading:)` in Tiers/ (see docs/configuration.md).
  public init(reading settings: SettingsReader) throws(ConfigurationError) {
    var configuration = StoreConfiguration()
    configuration.memory = try MemoryStoreConfiguration(reading: settings.scoped(to: "memory"))
    configuration.disk = try DiskStoreConfiguration.reading(settings.scoped(to: "disk"))
    configuration.tiered = try TieredStoreConfiguration(
      reading: settings.scoped(to: "tiered"), shared: settings.scoped(to: "shared"))
    self = configuration
  }

  /// Reads, checks for unknown keys and validates a configuration from `sources`: command line >
  /// environment (`EDGE_CDN_*`) > JSON or YAML file > defaults.
  ///
  /// This reads the file synchronously: call it at startup, before serving. An executable that
  /// reads more than the store from the same sources (the proxy's settings, say) builds one
  /// `SettingsReader`, reads every part through it and then calls `rejectUnknownSettings()`
  /// itself, since this function would take the other parts' keys for typos.
  public static func load(from sources: ConfigurationSources) throws(ConfigurationError) -> StoreConfiguration {
    let settings = try SettingsReader(sources: sources)
    let configuration = try StoreConfiguration(reading: settings)
    try settings.rejectUnknownSettings()
    do throws(ConfigurationError) {
      try configuration.validate()
    } catch {
      throw settings.attachingSource(to: error)
    }
    return configuration
  }

  /// `load(from:)` with the given file (or `--config` / `EDGE_CDN_CONFIG`), environment and arguments.
  public static func load(
    file: String?, environment: [String: String], arguments: [String]
  )
    throws(ConfigurationError) -> StoreConfiguration
  {
    try load(from: ConfigurationSources(file: file, environment: environment, arguments: arguments))
  }
}
