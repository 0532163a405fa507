import Foundation

/// Where settings come from, highest precedence first: command-line arguments, then environment
/// variables starting with `EDGE_CDN_`, then a JSON or YAML file, then each setting's default.
///
/// Tests and embedders pass their own dictionaries and argument lists; `process(file:)` takes the
/// running process's.
public struct ConfigurationSources: Sendable {
  /// The JSON or YAML file; when nil, `--config PATH` or `EDGE_CDN_CONFIG` names it, and with neither
  /// there is no file.
  public var file: String?
  /// Environment variables; only those starting with `EDGE_CDN_` are settings.
  public var environment: [String: String]
  /// Command-line arguments including the program name first, as in `CommandLine.arguments`.
  public var arguments: [String]

  /// The prefix of every environment variable that is a setting, without the separating `_`.
  public static let environmentPrefix = "EDGE_CDN"

  public init(file: String? = nil, environment: [String: String] = [:], arguments: [String] = []) {
    self.file = file
    self.environment = environment
    self.arguments = arguments
  }

  /// The running process's environment and arguments.
  public static func process(file: String? = nil) -> ConfigurationSources {
    ConfigurationSources(
      file: file, environment: ProcessInfo.processInfo.environment, arguments: CommandLine.arguments)
  }
}
