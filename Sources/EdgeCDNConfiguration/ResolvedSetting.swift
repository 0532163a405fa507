/// A setting's effective value and where it came from, so an executable can log its whole
/// configuration at startup and an operator can see which source won for each key.
public struct ResolvedSetting: Sendable, Hashable, CustomStringConvertible {
  /// The full key, e.g. `memory.byteBudget`.
  public var key: String
  /// The value as read, e.g. `512MiB`.
  public var value: String
  /// Where it came from, e.g. `environment variable EDGE_CDN_MEMORY_BYTE_BUDGET`; nil for a default.
  public var source: String?

  public init(key: String, value: String, source: String?) {
    self.key = key
    self.value = value
    self.source = source
  }

  public var description: String { "\(key) = \(value) (\(source ?? "default"))" }
}
