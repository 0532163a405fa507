import Configuration
import EdgeCDNStore
import Foundation

/// A settings file, read once at startup: JSON, or YAML when its name ends in `.yaml` or `.yml`.
/// Besides the snapshot that answers lookups it keeps every key the file sets, so that keys
/// nobody reads (typos) can be reported instead of silently ignored.
struct SettingsFile: Sendable {
  var path: String
  var snapshot: any ConfigSnapshot
  /// Every leaf key path of the file, dot-separated, with its value for messages.
  var leaves: [String: String]
  /// Keys whose value is a JSON boolean. `JSONSnapshot` hands booleans out as the integers 0 and
  /// 1, which would let `"shardCount": true` pass as 1; the reader turns them back into booleans.
  var booleanKeys: Set<String>

  /// The setting name errors about the file itself use.
  static let setting = "configuration file"

  init(path: String, snapshot: any ConfigSnapshot, leaves: [String: String], booleanKeys: Set<String>) {
    self.path = path
    self.snapshot = snapshot
    self.leaves = leaves
    self.booleanKeys = booleanKeys
  }

  /// Reads and parses the file at `path`, by the format its name says.
  init(path: String) throws(ConfigurationError) {
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw ConfigurationError(
        setting: Self.setting, value: "\"\(path)\"", allowed: "a readable file (\(Self.reason(error)))")
    }
    let lowercased = path.lowercased()
    if lowercased.hasSuffix(".yaml") || lowercased.hasSuffix(".yml") {
      self = try YAMLSettingsFile.parse(data, path: path)
    } else {
      self = try JSONSettingsFile.parse(data, path: path)
    }
  }

  /// Foundation's message without the NSError boilerplate, which on Linux hides the position.
  static func reason(_ error: any Error) -> String {
    let nsError = error as NSError
    if let debug = nsError.userInfo["NSDebugDescription"] as? String { return debug }
    return nsError.localizedDescription
  }
}
