public import Configuration
public import EdgeCDNStore

/// Reads typed settings from layered sources (command line > environment > file > default) and
/// turns every bad value into a `ConfigurationError` naming the key, the value, what is allowed
/// and where the value came from.
///
/// Lookups go through swift-configuration's snapshots and key encoders, so keys are spelled the
/// swift-configuration way in each source (`memory.byteBudget` in the file,
/// `EDGE_CDN_MEMORY_BYTE_BUDGET` in the environment, `--memory-byte-budget` on the command line).
/// It does not use `ConfigReader`'s getters because those turn an unconvertible value into the
/// default without a word, and an operator who typed "512MB" into an integer setting deserves
/// an error, not a silently ignored line.
///
/// Each tier reads its part through a scoped reader (`settings.scoped(to: "memory")`) and keeps
/// range checks in its own `validate()`; see docs/configuration.md.
public struct SettingsReader: Sendable {
  let layers: [SettingsLayer]
  let prefix: [String]
  let record: ReadRecord
  let file: SettingsFile?
  /// Environment variables that start with the settings prefix, checked for typos at the end.
  let prefixedEnvironmentNames: [String]

  /// The key that names the settings file on the command line (`--config`) or in the environment
  /// (`EDGE_CDN_CONFIG`) when `ConfigurationSources.file` is nil.
  public static let fileKey = "config"

  /// Reads the file (if any) and prepares the lookups. Throws when the file is missing, unreadable
  /// or not an object (a mapping in YAML).
  public init(sources: ConfigurationSources) throws(ConfigurationError) {
    let arguments = SettingsLayer(
      kind: .arguments, snapshot: CommandLineArgumentsProvider(arguments: sources.arguments).snapshot())
    let prefixComponents = ConfigurationSources.environmentPrefix.lowercased().split(separator: "_").map(String.init)
    let environment = SettingsLayer(
      kind: .environment,
      snapshot: EnvironmentVariablesProvider(environmentVariables: sources.environment)
        .prefixKeys(with: ConfigKey(prefixComponents)).snapshot())
    let record = ReadRecord()
    // As swift-configuration's command-line parser reads them: `--name value...` or `--name=value`.
    record.noteGivenOptions(
      sources.arguments.dropFirst().filter { $0.hasPrefix("--") }.map { String($0.prefix { $0 != "=" }) })
    let bootstrap = SettingsReader(layers: [arguments, environment], prefix: [], record: record, file: nil, names: [])
    var path = sources.file
    if path == nil {
      path = try bootstrap.optionalString(Self.fileKey)
    }
    var layers = [arguments, environment]
    var file: SettingsFile?
    if let path {
      let loaded = try SettingsFile(path: path)
      layers.append(SettingsLayer(kind: .file(path: path), snapshot: loaded.snapshot))
      file = loaded
    }
    let names = sources.environment.keys.filter { $0.hasPrefix(ConfigurationSources.environmentPrefix + "_") }
    self.init(layers: layers, prefix: [], record: record, file: file, names: names.sorted())
  }

  /// Reads from the given providers, highest precedence first, for tests and for embedders with
  /// sources of their own. There is no typo check: providers cannot list their keys.
  public init(providers: [any ConfigProvider]) {
    self.init(
      layers: providers.map { SettingsLayer(kind: .provider(name: $0.providerName), snapshot: $0.snapshot()) },
      prefix: [], record: ReadRecord(), file: nil, names: [])
  }

  init(layers: [SettingsLayer], prefix: [String], record: ReadRecord, file: SettingsFile?, names: [String]) {
    self.layers = layers
    self.prefix = prefix
    self.record = record
    self.file = file
    self.prefixedEnvironmentNames = names
  }

  /// A reader whose keys are relative to `key`, e.g. `scoped(to: "memory")` reads
  /// `memory.byteBudget` as `byteBudget`. It shares the record of what was read.
  public func scoped(to key: String) -> SettingsReader {
    SettingsReader(
      layers: layers, prefix: prefix + Self.components(key), record: record, file: file,
      names: prefixedEnvironmentNames)
  }

  /// The full dotted key of `key` under this reader's scope, as errors and the file spell it.
  public func fullKey(_ key: String) -> String {
    (prefix + Self.components(key)).joined(separator: ".")
  }

  static func components(_ key: String) -> [String] {
    key.split(separator: ".").map(String.init)
  }

  /// The highest-precedence value set for `key`, or nil when no source sets it.
  func lookup(_ key: String) throws(ConfigurationError) -> SettingValue? {
    let full = fullKey(key)
    let absoluteKey = AbsoluteConfigKey(prefix + Self.components(key))
    record.noteRead(key: full)
    // Note the environment name even when a higher layer answers, so a variable set alongside a
    // command-line option is not mistaken for a typo.
    // Any type gives the encoded name; a value that is not of that type throws, so try several
    // (an option given a comma-separated value is a list, a bare flag only a boolean).
    for layer in layers where layer.kind == .environment || layer.kind == .arguments {
      let types: [ConfigType] = [.string, .stringArray, .bool]
      if let name = types.lazy.compactMap({ try? layer.snapshot.value(forKey: absoluteKey, type: $0).encodedKey }).first
      {
        if layer.kind == .environment { record.noteEnvironmentName(name) } else { record.noteOptionName(name) }
      }
    }
    // Sources hold strings (environment, command line) or JSON values; try the types in an order
    // that reads each as it was written, and let the setting's accessor convert it.
    let types: [ConfigType] = [.string, .int, .double, .bool, .stringArray, .intArray, .doubleArray, .boolArray]
    for layer in layers {
      var lastEncodedKey: String?
      for type in types {
        let result: LookupResult
        do {
          result = try layer.snapshot.value(forKey: absoluteKey, type: type)
        } catch {
          continue
        }
        lastEncodedKey = result.encodedKey
        guard let value = result.value else { break }
        let source = layer.describe(encodedKey: result.encodedKey)
        record.noteSource(source, of: full)
        var content = value.content
        if case .file = layer.kind, let file, file.booleanKeys.contains(full), case .int(let int) = content {
          content = .bool(int != 0)
        }
        return SettingValue(content: content, layer: layer.kind, source: source)
      }
      if lastEncodedKey == nil {
        // Every type failed: the source holds something none of them reads, e.g. a
        // command-line option given twice with a list and a flag.
        throw ConfigurationError(
          setting: full, value: "(unreadable)", allowed: "a single string, number, boolean or list",
          source: layer.describe(encodedKey: full))
      }
    }
    return nil
  }

  func mismatch(_ value: SettingValue, _ key: String, allowed: String) -> ConfigurationError {
    ConfigurationError(setting: fullKey(key), value: value.display, allowed: allowed, source: value.source)
  }
}
