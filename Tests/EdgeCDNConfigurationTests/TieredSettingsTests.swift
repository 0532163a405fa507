import EdgeCDNConfiguration
import EdgeCDNStore
import Foundation
import TestSupport
import Testing

/// The tiered store's settings (`tiered.*`) and the shared tier client's (`shared.*`): read with
/// units from every source, and refused out of range with key, value, range and source.
@Suite("Tiered and shared tier settings")
struct TieredSettingsTests {
  func load(
    environment: [String: String] = [:], arguments: [String] = []
  ) throws(ConfigurationError) -> StoreConfiguration {
    try StoreConfiguration.load(file: nil, environment: environment, arguments: ["edge-cdn"] + arguments)
  }

  @Test("defaults are TieredStoreConfiguration() and validate")
  func defaults() throws {
    let configuration = try load()
    #expect(configuration.tiered == TieredStoreConfiguration())
    #expect(configuration.tiered.promotion == .onHit(count: 2, within: .seconds(60)))
    try configuration.tiered.validate()
  }

  @Test("every tiered and shared setting is read, with units, from the environment and the command line")
  func readsEverySetting() throws {
    let configuration = try load(
      environment: [
        "EDGE_CDN_TIERED_PROMOTION": "on-hit", "EDGE_CDN_TIERED_PROMOTION_HITS": "3",
        "EDGE_CDN_TIERED_PROMOTION_WINDOW": "90s", "EDGE_CDN_TIERED_PROMOTION_TRACKED_KEYS": "1024",
        "EDGE_CDN_TIERED_FILL_FROM_SHARED": "false", "EDGE_CDN_SHARED_CALL_TIMEOUT": "100ms",
        "EDGE_CDN_SHARED_BREAKER_FAILURE_THRESHOLD": "7",
      ],
      arguments: [
        "--tiered-write-behind", "off", "--shared-chunk-timeout", "2s", "--shared-upload-timeout", "1m",
        "--shared-breaker-open-duration", "1500ms", "--shared-write-behind-capacity", "64",
        "--shared-retry-capacity", "32", "--shared-max-attempts", "1", "--shared-retry-backoff", "0s",
      ])
    let tiered = configuration.tiered
    #expect(tiered.promotion == .onHit(count: 3, within: .seconds(90)))
    #expect(tiered.promotionTrackedKeys == 1024)
    #expect(!tiered.fillFromShared)
    #expect(!tiered.writeBehind)
    #expect(tiered.memoryMaxObjectSize == nil)
    let shared = tiered.shared
    #expect(shared.callTimeout == .milliseconds(100))
    #expect(shared.chunkTimeout == .seconds(2))
    #expect(shared.uploadTimeout == .seconds(60))
    #expect(shared.breaker == CircuitBreaker.Configuration(failureThreshold: 7, openDuration: .milliseconds(1500)))
    #expect(shared.writeBehindCapacity == 64)
    #expect(shared.retryCapacity == 32)
    #expect(shared.maxAttempts == 1)
    #expect(shared.retryBackoff == .zero)
  }

  @Test("promotion always and never need no parameters", arguments: ["always", "NEVER"])
  func promotionKinds(spelling: String) throws {
    let configuration = try load(environment: ["EDGE_CDN_TIERED_PROMOTION": spelling])
    #expect(configuration.tiered.promotion == (spelling == "always" ? .always : .never))
  }

  @Test(
    "each tiered or shared setting out of range is refused, naming key, value, range and source",
    arguments: [
      ("EDGE_CDN_TIERED_PROMOTION_HITS", "0", "tiered.promotionHits", "0", "1...64"),
      ("EDGE_CDN_TIERED_PROMOTION_HITS", "65", "tiered.promotionHits", "65", "1...64"),
      ("EDGE_CDN_TIERED_PROMOTION_WINDOW", "0s", "tiered.promotionWindow", "0s", "1ms...24h"),
      ("EDGE_CDN_TIERED_PROMOTION_WINDOW", "25h", "tiered.promotionWindow", "25h", "1ms...24h"),
      ("EDGE_CDN_TIERED_PROMOTION_TRACKED_KEYS", "8", "tiered.promotionTrackedKeys", "8", "16...16777216"),
      ("EDGE_CDN_SHARED_CALL_TIMEOUT", "0ms", "shared.callTimeout", "0s", "1ms...1m"),
      ("EDGE_CDN_SHARED_CALL_TIMEOUT", "2m", "shared.callTimeout", "2m", "1ms...1m"),
      ("EDGE_CDN_SHARED_CHUNK_TIMEOUT", "11m", "shared.chunkTimeout", "11m", "1ms...10m"),
      ("EDGE_CDN_SHARED_UPLOAD_TIMEOUT", "2h", "shared.uploadTimeout", "2h", "1ms...1h"),
      ("EDGE_CDN_SHARED_BREAKER_FAILURE_THRESHOLD", "0", "shared.breaker.failureThreshold", "0", "1...10000"),
      ("EDGE_CDN_SHARED_BREAKER_OPEN_DURATION", "0s", "shared.breaker.openDuration", "0s", "1ms...1h"),
      ("EDGE_CDN_SHARED_WRITE_BEHIND_CAPACITY", "0", "shared.writeBehindCapacity", "0", "1...1048576"),
      ("EDGE_CDN_SHARED_RETRY_CAPACITY", "2000000", "shared.retryCapacity", "2000000", "1...1048576"),
      ("EDGE_CDN_SHARED_MAX_ATTEMPTS", "0", "shared.maxAttempts", "0", "1...100"),
      ("EDGE_CDN_SHARED_RETRY_BACKOFF", "2m", "shared.retryBackoff", "2m", "0s...1m"),
    ] as [(String, String, String, String, String)])
  func outOfRange(variable: String, text: String, setting: String, value: String, allowed: String) throws {
    let error = try #require(try loadError(environment: [variable: text]))
    #expect(error.setting == setting)
    #expect(error.value == value)
    #expect(error.allowed == allowed)
    #expect(error.source == "environment variable \(variable)")
    #expect(
      error.description == "invalid \(setting) = \(value) (from environment variable \(variable)): allowed \(allowed)")
  }

  @Test("malformed values are refused by type, with the option's name")
  func malformed() throws {
    let noUnit = try #require(try loadError(arguments: ["--shared-call-timeout", "250"]))
    #expect(noUnit.setting == "shared.callTimeout")
    #expect(noUnit.allowed.contains("a unit after every number"))
    #expect(noUnit.source == "command-line option --shared-call-timeout")
    let rule = try #require(try loadError(arguments: ["--tiered-promotion", "sometimes"]))
    #expect(rule.setting == "tiered.promotion")
    #expect(rule.allowed == "one of always, never, on-hit")
    let flag = try #require(try loadError(environment: ["EDGE_CDN_TIERED_WRITE_BEHIND": "maybe"]))
    #expect(flag.setting == "tiered.writeBehind")
  }

  @Test("a misspelt tiered or shared key is refused with a suggestion")
  func typo() throws {
    let error = try #require(try loadError(environment: ["EDGE_CDN_SHARED_CALL_TIMOUT": "1s"]))
    #expect(error.allowed.hasSuffix("did you mean EDGE_CDN_SHARED_CALL_TIMEOUT?"))
  }

  @Test("validation checks values set in code, without clamping them first")
  func validationInCode() {
    var configuration = TieredStoreConfiguration()
    configuration.shared.maxAttempts = 0
    #expect(throws: ConfigurationError(setting: "shared.maxAttempts", value: "0", allowed: "1...100")) {
      try configuration.validate()
    }
    configuration = TieredStoreConfiguration(memoryMaxObjectSize: 0)
    #expect(throws: ConfigurationError.self) { try configuration.validate() }
  }

  @Test("an unset memory.maxObjectSize is lowered to a smaller byte budget; a set one is not")
  func memoryObjectLimitFollowsBudget() throws {
    let small = try load(arguments: ["--memory-byte-budget", "8MiB"])
    #expect(small.memory.maxObjectSize == 8 << 20)
    let error = try #require(
      try loadError(arguments: ["--memory-byte-budget", "8MiB", "--memory-max-object-size", "9MiB"]))
    #expect(error.setting == "memory.maxObjectSize")
  }
}

@Suite("Disabled disk tier settings")
struct DisabledDiskSettingsTests {
  @Test("a file that disables the disk tier may keep its disk settings")
  func disabledDiskKeepsKeys() throws {
    let directory = try TemporaryDirectory()
    let file = directory.path + "/edge-cdn.json"
    try #"{"disk": {"enabled": false, "path": "/var/cache/edge", "size": "8GiB"}}"#
      .write(toFile: file, atomically: true, encoding: .utf8)
    let configuration = try StoreConfiguration.load(file: file, environment: [:], arguments: ["edge-cdn"])
    #expect(configuration.disk == nil)
    // Still read: a malformed value is refused even while the tier is off.
    #expect(throws: ConfigurationError.self) {
      try StoreConfiguration.load(
        file: file, environment: ["EDGE_CDN_DISK_SIZE": "lots"], arguments: ["edge-cdn"])
    }
  }
}
