import Configuration

/// One source of settings, in the reader's precedence order. A layer keeps its kind so an error
/// can say where a bad value came from in the operator's own terms ("environment variable
/// EDGE_CDN_MEMORY_BYTE_BUDGET", "command-line option --memory-byte-budget").
struct SettingsLayer: Sendable {
  enum Kind: Sendable, Hashable {
    case arguments
    case environment
    case file(path: String)
    case provider(name: String)
  }

  var kind: Kind
  var snapshot: any ConfigSnapshot

  func describe(encodedKey: String) -> String {
    switch kind {
    case .arguments: "command-line option \(encodedKey)"
    case .environment: "environment variable \(encodedKey)"
    case .file(let path): "file \(path), key \(encodedKey)"
    case .provider(let name): "\(name), key \(encodedKey)"
    }
  }
}

/// A value found for a setting, before it is converted to the setting's type.
struct SettingValue: Sendable {
  var content: ConfigContent
  var layer: SettingsLayer.Kind
  var source: String

  /// The value as the operator wrote it, for error messages.
  var display: String {
    switch content {
    case .string(let string): "\"\(string)\""
    case .int(let int): "\(int)"
    case .double(let double): "\(double)"
    case .bool(let bool): "\(bool)"
    case .bytes(let bytes): "<\(bytes.count) bytes>"
    case .stringArray(let array): "[" + array.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
    case .intArray(let array): "\(array)"
    case .doubleArray(let array): "\(array)"
    case .boolArray(let array): "\(array)"
    case .byteChunkArray(let array): "<\(array.count) byte chunks>"
    }
  }
}
