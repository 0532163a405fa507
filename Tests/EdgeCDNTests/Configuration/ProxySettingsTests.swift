import EdgeCDN
import EdgeCDNConfiguration
import EdgeCDNStore
import Foundation
import Logging
import TestSupport
import Testing

/// The proxy's settings (`proxy.*`) read through the store's configuration system: same
/// precedence, same typo check, same error messages; the old options as shorthands.
@Suite("Proxy settings")
struct ProxySettingsTests {
  static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
  static let origin = ["EDGE_CDN_PROXY_ORIGIN_URL": "http://127.0.0.1:8080"]

  /// A file in a fresh folder that lives as long as the value.
  struct SettingsFile: Sendable {
    let directory: TemporaryDirectory
    let path: String

    init(_ contents: String) throws {
      directory = try TemporaryDirectory()
      path = directory.path + "/edge-cdn.json"
      try contents.write(toFile: path, atomically: true, encoding: .utf8)
    }
  }

  func load(
    file: String? = nil, environment: [String: String] = origin, arguments: [String] = []
  ) throws(ConfigurationError) -> EdgeCDNSettings {
    try EdgeCDNSettings.loadBlocking(
      from: ConfigurationSources(file: file, environment: environment, arguments: ["edge-cdn"] + arguments))
  }

  func loadError(
    file: String? = nil, environment: [String: String] = origin, arguments: [String] = []
  ) -> ConfigurationError? {
    do {
      let settings = try load(file: file, environment: environment, arguments: arguments)
      Issue.record("loaded \(settings.proxy)")
      return nil
    } catch {
      return error
    }
  }

  @Test("with only the origin set, every proxy setting has the executable's default")
  func defaults() throws {
    let settings = try load()
    var expected = ProxyConfiguration(
      origin: .init(host: "127.0.0.1", port: 8080), listen: .init(host: "127.0.0.1", port: 8081),
      adminListen: .init(host: "127.0.0.1", port: 9091))
    expected.logLevel = .info
    #expect(settings.proxy == expected)
    #expect(settings.store == StoreConfiguration())
  }

  @Test("the origin is required, and its absence says how to set it")
  func originRequired() throws {
    let error = try #require(loadError(environment: [:]))
    #expect(error.setting == "proxy.origin.url")
    #expect(error.value == "(not set)")
    #expect(error.allowed.contains("--origin URL, EDGE_CDN_PROXY_ORIGIN_URL"))
  }

  @Test("command line beats environment beats file beats default, for a proxy setting")
  func precedence() throws {
    let file = try SettingsFile(
      #"{"proxy": {"origin": {"url": "http://127.0.0.1:1000", "responseTimeout": "10s"}, "cache": {"lockTimeout": "2s"}}}"#
    )
    let fileOnly = try load(file: file.path, environment: [:])
    #expect(fileOnly.proxy.origin == .init(host: "127.0.0.1", port: 1000))
    #expect(fileOnly.proxy.originResponseTimeoutSeconds == 10)
    #expect(fileOnly.proxy.cacheLockTimeoutMilliseconds == 2_000)
    #expect(fileOnly.proxy.idleTimeoutSeconds == 60)

    let environment = ["EDGE_CDN_PROXY_ORIGIN_RESPONSE_TIMEOUT": "20s", "EDGE_CDN_PROXY_LIMITS_IDLE_TIMEOUT": "2m"]
    let withEnvironment = try load(file: file.path, environment: environment)
    #expect(withEnvironment.proxy.originResponseTimeoutSeconds == 20)
    #expect(withEnvironment.proxy.idleTimeoutSeconds == 120)
    #expect(withEnvironment.proxy.cacheLockTimeoutMilliseconds == 2_000)

    let withArguments = try load(
      file: file.path, environment: environment, arguments: ["--proxy-origin-response-timeout", "40s"])
    #expect(withArguments.proxy.originResponseTimeoutSeconds == 40)
    #expect(withArguments.proxy.idleTimeoutSeconds == 120)
    let source = withArguments.resolved.first { $0.key == "proxy.origin.responseTimeout" }?.source
    #expect(source == "command-line option --proxy-origin-response-timeout")
  }

  @Test("an unknown proxy key is refused, in the file and in the environment, with a suggestion")
  func unknownKey() throws {
    let file = try SettingsFile(
      #"{"proxy": {"origin": {"url": "http://127.0.0.1:1"}, "limits": {"idleTimout": "5s"}}}"#)
    let fromFile = try #require(loadError(file: file.path, environment: [:]))
    #expect(fromFile.setting == "proxy.limits.idleTimout")
    #expect(fromFile.allowed.hasSuffix("did you mean proxy.limits.idleTimeout?"))
    #expect(fromFile.source == "file \(file.path)")
    let fromEnvironment = try #require(
      loadError(environment: Self.origin.merging(["EDGE_CDN_PROXY_LISTN": ":80"]) { a, _ in a }))
    #expect(fromEnvironment.setting == "EDGE_CDN_PROXY_LISTN")
    #expect(fromEnvironment.allowed.hasSuffix("did you mean EDGE_CDN_PROXY_LISTEN?"))
  }

  @Test(
    "each proxy setting out of range is refused, naming key, value, range and source",
    arguments: [
      ("--proxy-limits-max-request-line", "32", "proxy.limits.maxRequestLine", "32B", "64B...1MiB"),
      ("--proxy-limits-max-header-size", "1MiB", "proxy.limits.maxHeaderSize", "1MiB", "1KiB...80KiB"),
      ("--proxy-limits-idle-timeout", "0s", "proxy.limits.idleTimeout", "0s", "1s...24h"),
      ("--proxy-origin-connect-timeout", "2h", "proxy.origin.connectTimeout", "2h", "1s...1h"),
      ("--proxy-origin-response-timeout", "0s", "proxy.origin.responseTimeout", "0s", "1s...1h"),
      ("--proxy-origin-max-idle-connections", "-1", "proxy.origin.maxIdleConnections", "-1", "0...65536"),
      ("--proxy-cache-lock-timeout", "11m", "proxy.cache.lockTimeout", "11m", "1ms...10m"),
      ("--proxy-cache-max-object-size", "0", "proxy.cache.maxObjectSize", "0B", "at least 1B"),
      ("--proxy-cache-heuristic-fraction", "1.5", "proxy.cache.heuristicFraction", "1.5", "0...1"),
      ("--proxy-cache-max-heuristic-freshness", "9000h", "proxy.cache.maxHeuristicFreshness", "9000h", "0s...8760h"),
      ("--proxy-shutdown-drain-timeout", "0s", "proxy.shutdown.drainTimeout", "0s", "1s...1h"),
      ("--proxy-purge-token", "short", "proxy.purgeToken", "(5 characters)", "at least 8 characters"),
      ("--proxy-cache-name", "edge cdn", "proxy.cache.name", "\"edge cdn\"", "a token of letters, digits, - _ ."),
    ] as [(String, String, String, String, String)])
  func outOfRange(option: String, text: String, setting: String, value: String, allowed: String) throws {
    let error = try #require(loadError(arguments: [option, text]))
    #expect(error.setting == setting)
    #expect(error.value == value)
    #expect(error.allowed.hasPrefix(allowed), "\(error)")
    #expect(error.source == "command-line option \(option)")
  }

  @Test("malformed proxy values are refused by type")
  func malformed() throws {
    let url = try #require(loadError(environment: ["EDGE_CDN_PROXY_ORIGIN_URL": "https://example.com"]))
    #expect(url.setting == "proxy.origin.url")
    #expect(url.source == "environment variable EDGE_CDN_PROXY_ORIGIN_URL")
    let address = try #require(loadError(arguments: ["--proxy-listen", "localhost"]))
    #expect(address.setting == "proxy.listen")
    #expect(address.allowed == "host:port with port 0...65535")
    let fraction = try #require(loadError(arguments: ["--proxy-cache-heuristic-fraction", "a tenth"]))
    #expect(fraction.allowed == "a decimal number such as 0.1")
    let level = try #require(loadError(arguments: ["--proxy-log-level", "loud"]))
    #expect(level.setting == "proxy.logLevel")
    #expect(level.allowed.hasPrefix("one of trace, debug, info"))
    let fractional = try #require(loadError(arguments: ["--proxy-limits-idle-timeout", "1500ms"]))
    #expect(fractional.setting == "proxy.limits.idleTimeout")
    #expect(fractional.allowed.hasPrefix("a whole number of seconds"))
    #expect(fractional.source == "command-line option --proxy-limits-idle-timeout")
  }

  @Test("the old options are shorthands for the settings, bare numbers in their old units")
  func shorthands() throws {
    let shorthands: [(CommandLineShorthand, String)] = [
      (.origin, "http://10.0.0.1:8000"), (.listen, ":9000"), (.adminListen, "none"), (.purgeToken, "0123456789"),
      (.idleTimeout, "5"), (.originTimeout, "90s"), (.maxObjectSize, "2"), (.memorySize, "64"),
      (.accessLog, "true"), (.logLevel, "debug"),
    ]
    #expect(Set(shorthands.map(\.0)) == Set(CommandLineShorthand.allCases))
    let settings = try load(environment: [:], arguments: shorthands.flatMap { $0.0.arguments($0.1) })
    let proxy = settings.proxy
    #expect(proxy.origin == .init(host: "10.0.0.1", port: 8000))
    #expect(proxy.listen == .init(host: "0.0.0.0", port: 9000))
    #expect(proxy.adminListen == nil)
    #expect(proxy.purgeToken == "0123456789")
    #expect(proxy.idleTimeoutSeconds == 5)
    #expect(proxy.originResponseTimeoutSeconds == 90)
    #expect(proxy.maxCacheableObjectBytes == 2 << 20)
    #expect(settings.store.memory.byteBudget == 64 << 20)
    #expect(proxy.accessLogAtInfo)
    #expect(proxy.logLevel == .debug)
    #expect(CommandLineShorthand.origin.settingFlag == "--proxy-origin-url")
    #expect(CommandLineShorthand.adminListen.arguments("127.0.0.1:1") == ["--proxy-admin-listen", "127.0.0.1:1"])
    // The token is never printed with the resolved settings.
    #expect(!settings.resolved.map(\.description).joined().contains("0123456789"))
  }

  @Test("examples/edge-cdn.json loads strictly, every section, with the values it shows")
  func exampleFile() throws {
    let path = Self.packageRoot.appendingPathComponent("examples/edge-cdn.json").path
    let settings = try load(file: path, environment: [:])
    var expected = ProxyConfiguration(
      origin: .init(host: "127.0.0.1", port: 8080), listen: .init(host: "127.0.0.1", port: 8081),
      adminListen: .init(host: "127.0.0.1", port: 9091))
    expected.logLevel = .info
    #expect(settings.proxy == expected)
    #expect(settings.store.memory.byteBudget == 512 << 20)
    #expect(settings.store.tiered == TieredStoreConfiguration())
    // Every key in the file was read from it: the example sets every setting but the token.
    let fromDefaults = settings.resolved.filter { $0.source == nil }.map(\.key)
    #expect(fromDefaults == ["proxy.purgeToken"])
  }

  @Test("examples/edge-cdn.yaml loads strictly too, to the same settings as the JSON example")
  func yamlExample() throws {
    let examples = Self.packageRoot.appendingPathComponent("examples")
    let yaml = try load(file: examples.appendingPathComponent("edge-cdn.yaml").path, environment: [:])
    let json = try load(file: examples.appendingPathComponent("edge-cdn.json").path, environment: [:])
    #expect(yaml.proxy == json.proxy)
    #expect(yaml.store == json.store)
    #expect(yaml.resolved.filter { $0.source == nil }.map(\.key) == ["proxy.purgeToken"])
  }

  @Test("every option passed on as a setting must be one: a misspelt option is refused with a suggestion")
  func unknownOption() throws {
    let error = try #require(loadError(arguments: ["--disk-paht", "/tmp/x"]))
    #expect(error.setting == "--disk-paht")
    #expect(error.allowed.hasSuffix("did you mean --disk-path?"))
    #expect(error.source == "command-line option --disk-paht")
    let joined = try #require(loadError(arguments: ["--proxy-cache-nme=edge"]))
    #expect(joined.setting == "--proxy-cache-nme")
    // Known options pass in either form, a list-valued one included (commas split values).
    let settings = try load(arguments: [
      "--proxy-origin-url", "http://127.0.0.1:8080/?a=1,2", "--disk-enabled=false", "--proxy-access-log",
    ])
    #expect(settings.store.disk == nil)
    #expect(settings.proxy.accessLogAtInfo)
  }

  @Test("docs/configuration.md lists every setting edge-cdn reads, and no other")
  func docsListEverySetting() throws {
    let docs = try String(
      contentsOf: Self.packageRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
    // Rows of the settings tables start with the key in backticks, then its environment variable.
    var documented: Set<String> = []
    for line in docs.split(separator: "\n") where line.hasPrefix("| `") {
      let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
      guard cells.count > 2, cells[1].hasPrefix("`EDGE_CDN_") else { continue }
      documented.insert(String(cells[0].dropFirst().dropLast()))
    }
    let settings = try load()
    let read = Set(settings.resolved.map(\.key)).union(["config"])
    #expect(documented.count > 40)
    #expect(read.subtracting(documented).sorted() == [], "read but not documented")
    #expect(documented.subtracting(read).sorted() == [], "documented but not read")
  }
}
