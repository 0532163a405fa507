public import EdgeCDNStore

extension SettingsReader {
  /// Throws for the first key the file sets, or `EDGE_CDN_` environment variable present, that no
  /// reader has looked up: almost always a typo, which would otherwise leave a default in force
  /// without a word. Call it after every part of the configuration (store, proxy, ...) was read
  /// through this reader or its scoped children. Command-line options are checked only with
  /// `includingCommandLine`: an executable whose argument parser passes on the options it does
  /// not own (so that every option left is a setting) asks for it; by default its own options
  /// would be taken for typos.
  public func rejectUnknownSettings(includingCommandLine: Bool = false) throws(ConfigurationError) {
    let known = record.keys
    if let file {
      for (key, value) in file.leaves.sorted(by: { $0.key < $1.key }) where !known.contains(key) {
        throw ConfigurationError(
          setting: key, value: value, allowed: Self.knownSettingHint(for: key, among: known),
          source: "file \(file.path)")
      }
    }
    let knownNames = record.environmentNames.union([Self.environmentName(ofTopLevelKey: Self.fileKey)])
    for name in prefixedEnvironmentNames where !knownNames.contains(name) {
      throw ConfigurationError(
        setting: name, value: "(set)",
        allowed: Self.knownSettingHint(for: name, among: record.environmentNames),
        source: "environment variable \(name)")
    }
    guard includingCommandLine else { return }
    let knownOptions = record.optionNames.union(["--" + Self.fileKey])
    for option in record.givenOptions where !knownOptions.contains(option) {
      throw ConfigurationError(
        setting: option, value: "(given)", allowed: Self.knownSettingHint(for: option, among: record.optionNames),
        source: "command-line option \(option)")
    }
  }

  /// Every setting read so far with its effective value and source (or default), sorted by key:
  /// what an executable logs at startup.
  public var resolvedSettings: [ResolvedSetting] { record.resolved }

  /// `error` with its source filled in from where `error.setting` was read, for range errors that
  /// a tier's `validate()` finds after reading.
  public func attachingSource(to error: ConfigurationError) -> ConfigurationError {
    guard error.source == nil, let source = record.source(of: error.setting) else { return error }
    var error = error
    error.source = source
    return error
  }

  static func environmentName(ofTopLevelKey key: String) -> String {
    ConfigurationSources.environmentPrefix + "_" + key.uppercased()
  }

  private static func knownSettingHint(for key: String, among known: Set<String>) -> String {
    let base = "a known setting (see docs/configuration.md)"
    let best = known.map { (name: $0, distance: editDistance($0.lowercased(), key.lowercased())) }
      .filter { $0.distance <= max(2, key.count / 3) }
      .min { ($0.distance, $0.name) < ($1.distance, $1.name) }
    guard let best else { return base }
    return base + "; did you mean \(best.name)?"
  }

  /// Levenshtein distance; keys are short, so the quadratic table is fine.
  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
      current[0] = i
      for j in 1...b.count {
        let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
        current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
      }
      swap(&previous, &current)
    }
    return previous[b.count]
  }
}
