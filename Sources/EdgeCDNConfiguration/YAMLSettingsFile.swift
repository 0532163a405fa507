import Configuration
import EdgeCDNStore
import Foundation
import Yams

/// A YAML settings file. swift-configuration's `YAMLSnapshot` answers lookups; the same text is
/// walked here with Yams to list every key it sets (for the typo check) and to find nulls.
///
/// YAML scalars reach the reader as text (`64`, `true`, `512MiB`) and each setting's getter parses
/// them, as it does environment variables. A null (`key:` or `key: ~`) leaves the default in
/// force, as a JSON null does.
enum YAMLSettingsFile {
  static func parse(_ data: Data, path: String) throws(ConfigurationError) -> SettingsFile {
    let quotedPath = "\"\(path)\""
    let root: Node?
    do {
      root = try Parser(yaml: data).singleRoot()
    } catch {
      throw ConfigurationError(setting: SettingsFile.setting, value: quotedPath, allowed: "well-formed YAML (\(error))")
    }
    guard let mapping = root?.mapping else {
      throw ConfigurationError(
        setting: SettingsFile.setting, value: quotedPath, allowed: "a YAML mapping at the top level, e.g. memory: {...}"
      )
    }
    let snapshot: YAMLSnapshot
    do {
      snapshot = try YAMLSnapshot(data: data.bytes, providerName: "file \(path)", parsingOptions: .default)
    } catch {
      throw ConfigurationError(
        setting: SettingsFile.setting, value: quotedPath,
        allowed: "string keys, scalars, mappings and lists of scalars (\(error))")
    }
    var leaves: [String: String] = [:]
    var nulls: Set<String> = []
    collectLeaves(of: mapping, under: [], into: &leaves, nulls: &nulls)
    return SettingsFile(
      path: path, snapshot: NullsAsMissing(base: snapshot, nulls: nulls), leaves: leaves, booleanKeys: [])
  }

  private static func collectLeaves(
    of mapping: Node.Mapping, under path: [String], into leaves: inout [String: String], nulls: inout Set<String>
  ) {
    for (key, value) in mapping {
      // YAMLSnapshot refuses keys that are not strings, before this runs.
      let components = path + [key.string ?? "\(key)"]
      if let nested = value.mapping {
        collectLeaves(of: nested, under: components, into: &leaves, nulls: &nulls)
        continue
      }
      let fullKey = components.joined(separator: ".")
      if value.null != nil {
        nulls.insert(fullKey)
        continue
      }
      if let sequence = value.sequence {
        leaves[fullKey] = "[" + sequence.map { "\"\($0.string ?? "")\"" }.joined(separator: ", ") + "]"
      } else {
        leaves[fullKey] = "\"\(value.string ?? "")\""
      }
    }
  }
}

/// A snapshot that answers "not set" for the keys a YAML file sets to null, so that they keep
/// their defaults instead of reading as the empty string.
struct NullsAsMissing: ConfigSnapshot {
  var base: any ConfigSnapshot
  var nulls: Set<String>

  var providerName: String { base.providerName }

  func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
    let dotted = key.components.joined(separator: ".")
    if nulls.contains(dotted) { return LookupResult(encodedKey: dotted, value: nil) }
    return try base.value(forKey: key, type: type)
  }
}
