import Configuration
import EdgeCDNStore
import Foundation

/// A JSON settings file. It is parsed twice: by swift-configuration's `JSONSnapshot`, which answers
/// lookups, and by `JSONSerialization` here, which lists every key the file sets so that keys
/// nobody reads (typos) can be reported instead of silently ignored.
enum JSONSettingsFile {
  static func parse(_ data: Data, path: String) throws(ConfigurationError) -> SettingsFile {
    let quotedPath = "\"\(path)\""
    let parsed: Any
    do {
      parsed = try JSONSerialization.jsonObject(with: data)
    } catch {
      throw ConfigurationError(
        setting: SettingsFile.setting, value: quotedPath,
        allowed: "well-formed JSON (\(Self.position(of: error, in: data))\(SettingsFile.reason(error)))")
    }
    guard let object = parsed as? [String: Any] else {
      throw ConfigurationError(
        setting: SettingsFile.setting, value: quotedPath,
        allowed: "a JSON object at the top level, e.g. {\"memory\": {...}}")
    }
    let snapshot: JSONSnapshot
    do {
      snapshot = try JSONSnapshot(data: data.bytes, providerName: "file \(path)", parsingOptions: .default)
    } catch {
      // JSONSnapshot rejects nulls and mixed arrays, which JSONSerialization accepts.
      throw ConfigurationError(
        setting: SettingsFile.setting, value: quotedPath,
        allowed: "strings, numbers, booleans, objects and arrays of one type, no null (\(error))")
    }
    var leaves: [String: String] = [:]
    var booleanKeys: Set<String> = []
    Self.collectLeaves(of: object, under: [], into: &leaves, booleans: &booleanKeys)
    return SettingsFile(path: path, snapshot: snapshot, leaves: leaves, booleanKeys: booleanKeys)
  }

  private static func collectLeaves(
    of object: [String: Any], under path: [String], into leaves: inout [String: String],
    booleans: inout Set<String>
  ) {
    for (key, value) in object {
      if let nested = value as? [String: Any] {
        collectLeaves(of: nested, under: path + [key], into: &leaves, booleans: &booleans)
      } else {
        let fullKey = (path + [key]).joined(separator: ".")
        leaves[fullKey] = Self.display(value)
        // JSONSerialization's booleans are NSNumbers of type char ("c") on Linux and Darwin alike.
        if let number = value as? NSNumber, String(cString: number.objCType) == "c" { booleans.insert(fullKey) }
      }
    }
  }

  private static func display(_ value: Any) -> String {
    if let string = value as? String { return "\"\(string)\"" }
    if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) {
      return String(decoding: data, as: UTF8.self)
    }
    return "\(value)"
  }

  /// "line 3, column 17: " for a JSONSerialization error that carries an offset, since an
  /// offset alone makes the operator count characters.
  private static func position(of error: any Error, in data: Data) -> String {
    let userInfo = (error as NSError).userInfo
    // Darwin gives the offset as a number; Linux only inside "... around character 27."
    var offset = userInfo["NSJSONSerializationErrorIndex"] as? Int
    if offset == nil, let debug = userInfo["NSDebugDescription"] as? String,
      let range = debug.range(of: "around character ")
    {
      offset = Int(debug[range.upperBound...].prefix { $0.isNumber })
    }
    guard let offset else { return "" }
    var line = 1
    var column = 1
    for byte in data.prefix(offset) {
      if byte == UInt8(ascii: "\n") {
        line += 1
        column = 1
      } else {
        column += 1
      }
    }
    return "line \(line), column \(column): "
  }
}
