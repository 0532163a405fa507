import Configuration
public import EdgeCDNStore

/// The typed getters a tier's reader uses. Each returns `default` when no source sets the key and
/// throws a `ConfigurationError` naming key, value, allowed form and source when one sets it to
/// something that is not of the setting's type. Ranges are left to the tier's `validate()`.
extension SettingsReader {
  /// An integer; strings from the environment or command line are parsed, JSON numbers must be whole.
  public func int(_ key: String, default defaultValue: Int) throws(ConfigurationError) -> Int {
    guard let value = try lookup(key) else { return defaultValue }
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

  /// A size: a JSON number of bytes or a string in `ByteSize`'s grammar ("512MiB", "2GB").
  public func size(_ key: String, default defaultValue: ByteSize) throws(ConfigurationError) -> ByteSize {
    guard let value = try lookup(key) else { return defaultValue }
    switch value.content {
    case .int(let int) where int >= 0:
      return ByteSize(bytes: int)
    case .double(let double):
      if let int = Int(exactly: double), int >= 0 { return ByteSize(bytes: int) }
    case .string(let string):
      do throws(ConfigurationError) {
        return try ByteSize(parsing: string, setting: fullKey(key))
      } catch {
        var error = error
        error.source = value.source
        throw error
      }
    default:
      break
    }
    throw mismatch(value, key, allowed: ByteSize.grammarSummary)
  }

  /// A duration: a string in `DurationSetting`'s grammar ("500ms", "30s"); bare numbers are
  /// rejected because their unit would be a guess.
  public func duration(
    _ key: String, default defaultValue: DurationSetting
  ) throws(ConfigurationError)
    -> DurationSetting
  {
    guard let value = try lookup(key) else { return defaultValue }
    guard case .string(let string) = value.content else {
      throw mismatch(value, key, allowed: DurationSetting.grammarSummary + ", as a string with its unit")
    }
    do throws(ConfigurationError) {
      return try DurationSetting(parsing: string, setting: fullKey(key))
    } catch {
      var error = error
      error.source = value.source
      throw error
    }
  }

  /// A string. On the command line swift-configuration splits values at commas; they are joined
  /// back so `--origin-url http://a/?x=1,2` keeps its comma.
  public func string(_ key: String, default defaultValue: String) throws(ConfigurationError) -> String {
    try optionalString(key) ?? defaultValue
  }

  /// A string, or nil when no source sets it.
  public func optionalString(_ key: String) throws(ConfigurationError) -> String? {
    guard let value = try lookup(key) else { return nil }
    switch value.content {
    case .string(let string):
      return string
    case .stringArray(let parts) where value.layer == .arguments:
      return parts.joined(separator: ",")
    default:
      throw mismatch(value, key, allowed: "a string")
    }
  }

  /// A boolean: JSON true/false, or true/false, yes/no, on/off, 1/0 as text (any case). A bare
  /// command-line flag (`--feature`) is true.
  public func bool(_ key: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
    guard let value = try lookup(key) else { return defaultValue }
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

  /// A list of strings: a JSON array, or comma-separated text ("memory,disk"); blanks around
  /// items are dropped, and an empty string is the empty list.
  public func stringList(_ key: String, default defaultValue: [String]) throws(ConfigurationError) -> [String] {
    guard let value = try lookup(key) else { return defaultValue }
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

  /// One of an enumeration's raw values, matched without regard to case, e.g. an eviction policy.
  public func choice<Choice: RawRepresentable & CaseIterable>(
    _ key: String, default defaultValue: Choice
  )
    throws(ConfigurationError) -> Choice where Choice.RawValue == String
  {
    guard let value = try lookup(key) else { return defaultValue }
    let allowed = "one of " + Choice.allCases.map(\.rawValue).joined(separator: ", ")
    guard case .string(let string) = value.content else { throw mismatch(value, key, allowed: allowed) }
    let wanted = string.trimmingBlanks().lowercased()
    guard let match = Choice.allCases.first(where: { $0.rawValue.lowercased() == wanted }) else {
      throw mismatch(value, key, allowed: allowed)
    }
    return match
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
