/// A setting whose value cannot be used, named so an operator can fix it without reading code:
/// which setting, the value as given, what would have been accepted and, once the value was read
/// from a file, an environment variable or the command line, where it came from.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The setting's key as written in a configuration file, e.g. `memory.byteBudget`.
  public var setting: String
  /// The offending value as the operator wrote it (or as a validated number).
  public var value: String
  /// What the setting accepts, e.g. `1...4096` or `a size such as 512MiB or 2GB`.
  public var allowed: String
  /// Where the value came from, e.g. `environment variable EDGE_CDN_MEMORY_BYTE_BUDGET`;
  /// nil for values set in code.
  public var source: String?

  public init(setting: String, value: String, allowed: String, source: String? = nil) {
    self.setting = setting
    self.value = value
    self.allowed = allowed
    self.source = source
  }

  public var description: String {
    let origin = source.map { " (from \($0))" } ?? ""
    return "invalid \(setting) = \(value)\(origin): allowed \(allowed)"
  }
}
