import Configuration
public import EdgeCDNStore

/// The typed getters a tier's reader uses. Each returns `default` when no source sets the key and
/// throws a `ConfigurationError` naming key, value, allowed form and source when one sets it to
/// something that is not of the setting's type. Ranges are left to the tier's `validate()`.
/// Every result is also noted, with its source, for `resolvedSettings`.
extension SettingsReader {
  /// An integer; strings from the environment or command line are parsed, JSON numbers must be whole.
  public func int(_ key: String, default defaultValue: Int) throws(ConfigurationError) -> Int {
    try resolve(key, default: defaultValue) { value throws(ConfigurationError) in
      switch value.content {
      case .int(let int):
        return int
      case .double(let double):
        if let int = Int(exactly: double) { return int }
      case .string(let string):
        if let int = Int(string.trimmingBlanks()) { return int }
      default:
        break
      }
      throw mismatch(value, key, allowed: "an integer")
    }
  }

  /// A size: a JSON number of bytes or a string in `ByteSize`'s grammar ("512MiB", "2GB").
  public func size(_ key: String, default defaultValue: ByteSize) throws(ConfigurationError) -> ByteSize {
    try resolve(key, default: defaultValue) { value throws(ConfigurationError) in
      try size(of: value, key, allowed: ByteSize.grammarSummary)
    }
  }

  /// A size, or "off" (any case) for 0: for a feature a size turns on from.
  public func sizeOrOff(_ key: String, default defaultValue: ByteSize) throws(ConfigurationError) -> ByteSize {
    try resolve(key, default: defaultValue) { value throws(ConfigurationError) in
      if case .string(let string) = value.content, string.trimmingBlanks().lowercased() == "off" {
        return ByteSize(bytes: 0)
      }
      return try size(of: value, key, allowed: "\"off\" or " + ByteSize.grammarSummary)
    }
  }

  private func size(of value: SettingValue, _ key: String, allowed: String) throws(ConfigurationError) -> ByteSize {
    switch value.content {
    case .int(let int) where int >= 0:
      return ByteSize(bytes: int)
    case .double(let double):
      if let int = Int(exactly: double), int >= 0 { return ByteSize(bytes: int) }
    case .string(let string):
      return try withSource(value) { () throws(ConfigurationError) in
        try ByteSize(parsing: string, setting: fullKey(key))
      }
    default:
      break
    }
    throw mismatch(value, key, allowed: allowed)
  }

  /// A duration: a string in `DurationSetting`'s grammar ("500ms", "30s"); bare numbers are
  /// rejected because their unit would be a guess.
  public func duration(
    _ key: String, default defaultValue: DurationSetting
  ) throws(ConfigurationError) -> DurationSetting {
    try resolve(key, default: defaultValue) { value throws(ConfigurationError) in
      guard case .string(let string) = value.content else {
        throw mismatch(value, key, allowed: DurationSetting.grammarSummary + ", as a string with its unit")
      }
      return try withSource(value) { () throws(ConfigurationError) in
        try DurationSetting(parsing: string, setting: fullKey(key))
      }
    }
  }

  /// A number with a fraction (e.g. `0.1`): a JSON number, or decimal text from the environment or
  /// command line. NaN and infinities are refused, since no setting's range holds them.
  public func double(_ key: String, default defaultValue: Double) throws(ConfigurationError) -> Double {
    try resolve(key, default: defaultValue) { value throws(ConfigurationError) in
      switch value.content {
      case .double(let double) where double.isFinite:
        return double
      case .int(let int):
        return Double(int)
      case .string(let string):
        if let double = Double(string.trimmingBlanks()), double.isFinite { return double }
      default:
        break
      }
      throw mismatch(value, key, allowed: "a decimal number such as 0.1")
    }
  }

  /// A string that must not be printed (a token), or nil when no source sets it:
  /// `resolvedSettings` shows only whether it is set and its length, so logging the
  /// configuration at startup does not leak it.
  public func optionalSecret(_ key: String) throws(ConfigurationError) -> String? {
    try resolve(key, default: String?.none, describe: { $0.map { "(hidden, \($0.count) characters)" } ?? "(none)" }) {
      value throws(ConfigurationError) in try stringValue(value, key)
    }
  }

  /// A string. On the command line swift-configuration splits values at commas; they are joined
  /// back so `--origin-url http://a/?x=1,2` keeps its comma.
  public func string(_ key: String, default defaultValue: String) throws(ConfigurationError) -> String {
    try resolve(key, default: defaultValue) { value throws(ConfigurationError) in try stringValue(value, key) }
  }

  /// A string, or nil when no source sets it.
  public func optionalString(_ key: String) throws(ConfigurationError) -> String? {
    try resolve(key, default: String?.none) { value throws(ConfigurationError) in try stringValue(value, key) }
  }

  /// A boolean: JSON true/false, or true/false, yes/no, on/off, 1/0 as text (any case). A bare
  /// command-line flag (`--feature`) is true.
  public func bool(_ key: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
    try resolve(key, default: defaultValue) { value throws(ConfigurationError) in
      switch value.content {
      case .bool(let bool):
        return bool
      case .int(0):
        return false
      case .int(1):
        return true
      case .string(let string):
        switch string.trimmingBlanks().lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: break
        }
      default:
        break
      }
      throw mismatch(value, key, allowed: "a boolean (true/false, yes/no, on/off, 1/0)")
    }
  }

  /// A list of strings: a JSON array, or comma-separated text ("memory,disk"); blanks around
  /// items are dropped, and an empty string is the empty list.
  public func stringList(_ key: String, default defaultValue: [String]) throws(ConfigurationError) -> [String] {
    try resolve(key, default: defaultValue) { value throws(ConfigurationError) in
      switch value.content {
      case .stringArray(let items):
        return items.map { $0.trimmingBlanks() }
      case .string(let string):
        let trimmed = string.trimmingBlanks()
        return trimmed.isEmpty ? [] : trimmed.split(separator: ",").map { String($0).trimmingBlanks() }
      default:
        throw mismatch(value, key, allowed: "a list of strings (a JSON array or comma-separated text)")
      }
    }
  }

  /// One of an enumeration's raw values, matched without regard to case, e.g. an eviction policy.
  public func choice<Choice: RawRepresentable & CaseIterable>(
    _ key: String, default defaultValue: Choice
  ) throws(ConfigurationError) -> Choice where Choice.RawValue == String {
    try resolve(key, default: defaultValue, describe: { $0.rawValue }) { value throws(ConfigurationError) in
      let allowed = "one of " + Choice.allCases.map(\.rawValue).joined(separator: ", ")
      guard case .string(let string) = value.content else { throw mismatch(value, key, allowed: allowed) }
      let wanted = string.trimmingBlanks().lowercased()
      guard let match = Choice.allCases.first(where: { $0.rawValue.lowercased() == wanted }) else {
        throw mismatch(value, key, allowed: allowed)
      }
      return match
    }
  }

  /// Looks `key` up, converts a value found with `convert`, and notes the result and its source.
  private func resolve<Value>(
    _ key: String, default defaultValue: Value, describe: (Value) -> String = { Self.describe($0) },
    convert: (SettingValue) throws(ConfigurationError) -> Value
  ) throws(ConfigurationError) -> Value {
    guard let value = try lookup(key) else {
      record.noteResolved(ResolvedSetting(key: fullKey(key), value: describe(defaultValue), source: nil))
      return defaultValue
    }
    let converted = try convert(value)
    record.noteResolved(ResolvedSetting(key: fullKey(key), value: describe(converted), source: value.source))
    return converted
  }

  private static func describe<Value>(_ value: Value) -> String {
    switch value {
    case let string as String: "\"\(string)\""
    case let strings as [String]: "[" + strings.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
    case let optional as String?: optional.map { "\"\($0)\"" } ?? "(none)"
    default: "\(value)"
    }
  }

  private func stringValue(_ value: SettingValue, _ key: String) throws(ConfigurationError) -> String {
    switch value.content {
    case .string(let string):
      return string
    case .stringArray(let parts) where value.layer == .arguments:
      return parts.joined(separator: ",")
    default:
      throw mismatch(value, key, allowed: "a string")
    }
  }

  /// Runs a parser whose errors name the setting but cannot know where its text came from.
  private func withSource<Value>(
    _ value: SettingValue, _ parse: () throws(ConfigurationError) -> Value
  ) throws(ConfigurationError) -> Value {
    do throws(ConfigurationError) {
      return try parse()
    } catch {
      var error = error
      error.source = value.source
      throw error
    }
  }
}

extension String {
  func trimmingBlanks() -> String {
    String(decoding: Array(utf8)[...].trimmingBlanksForSettings(), as: UTF8.self)
  }
}

extension ArraySlice<UInt8> {
  fileprivate func trimmingBlanksForSettings() -> ArraySlice<UInt8> {
    var slice = self
    while let first = slice.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
      slice = slice.dropFirst()
    }
    while let last = slice.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { slice = slice.dropLast() }
    return slice
  }
}
