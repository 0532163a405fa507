/// The options `edge-cdn` took before its settings moved to the configuration system, kept as
/// shorthands for the settings they always set: `--origin URL` is `--proxy-origin-url URL`, so
/// `EDGE_CDN_PROXY_ORIGIN_URL` or the file can set it too, and the command line still wins.
///
/// Where an old option took a bare number in a fixed unit (`--idle-timeout 60` in seconds,
/// `--max-object-size 16` in MiB), a bare number keeps that unit; a value with a unit ("90s",
/// "512KiB") is passed on as written.
public enum CommandLineShorthand: String, CaseIterable, Sendable {
  case origin
  case listen
  case adminListen = "admin-listen"
  case purgeToken = "purge-token"
  case idleTimeout = "idle-timeout"
  case originTimeout = "origin-timeout"
  case maxObjectSize = "max-object-size"
  case memorySize = "memory-size"
  case accessLog = "access-log"
  case logLevel = "log-level"

  /// The setting's key, as docs/configuration.md and error messages name it.
  public var setting: String {
    switch self {
    case .origin: "proxy.origin.url"
    case .listen: "proxy.listen"
    case .adminListen: "proxy.adminListen"
    case .purgeToken: "proxy.purgeToken"
    case .idleTimeout: "proxy.limits.idleTimeout"
    case .originTimeout: "proxy.origin.responseTimeout"
    case .maxObjectSize: "proxy.cache.maxObjectSize"
    case .memorySize: "memory.byteBudget"
    case .accessLog: "proxy.accessLog"
    case .logLevel: "proxy.logLevel"
    }
  }

  /// The setting's own command-line option (swift-configuration's spelling of `setting`).
  public var settingFlag: String {
    var flag = "-"
    for character in setting {
      if character == "." {
        flag.append("-")
      } else if character.isUppercase {
        flag += "-" + character.lowercased()
      } else {
        flag.append(character)
      }
    }
    return "-" + flag
  }

  /// The unit a bare number had when the option was an option of its own.
  var bareNumberUnit: String? {
    switch self {
    case .idleTimeout, .originTimeout: "s"
    case .maxObjectSize, .memorySize: "MiB"
    default: nil
    }
  }

  /// The setting's arguments for the shorthand's value, e.g. `["--proxy-limits-idle-timeout", "60s"]`
  /// for `--idle-timeout 60`. For `--access-log`, a flag, pass "true".
  public func arguments(_ value: String) -> [String] {
    var value = value
    if let unit = bareNumberUnit, !value.isEmpty, value.allSatisfy(\.isASCIIDigit) { value += unit }
    return [settingFlag, value]
  }
}

extension Character {
  fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
