import Configuration
import EdgeCDNConfiguration
import EdgeCDNStore
import Foundation
import TestSupport
import Testing

/// The typed getters other tiers will use (durations, booleans, lists, choices), driven through
/// swift-configuration's in-memory provider and the real environment and command-line providers.
@Suite("SettingsReader")
struct SettingsReaderTests {
  enum Policy: String, CaseIterable { case lru, s3fifo, tinyufo }

  func reader(_ values: [AbsoluteConfigKey: ConfigValue]) -> SettingsReader {
    SettingsReader(providers: [InMemoryProvider(name: "test", values: values)])
  }

  @Test("in-memory providers layer in the order given")
  func providerOrder() throws {
    let high = InMemoryProvider(name: "high", values: ["memory.shardCount": 2])
    let low = InMemoryProvider(name: "low", values: ["memory.shardCount": 9, "memory.byteBudget": "1MiB"])
    let settings = SettingsReader(providers: [high, low])
    let memory = try MemoryStoreConfiguration(reading: settings.scoped(to: "memory"))
    // The unset maxObjectSize follows the 1 MiB budget down from its 16 MiB default.
    #expect(memory == MemoryStoreConfiguration(byteBudget: 1 << 20, maxObjectSize: 1 << 20, shardCount: 2))
  }

  @Test("durations need a unit and name their source when wrong")
  func durations() throws {
    let settings = reader(["disk.flushInterval": "250ms", "disk.bad": 30, "disk.worse": "30 parsecs"])
    #expect(try settings.duration("disk.flushInterval", default: .seconds(1)) == .milliseconds(250))
    #expect(try settings.duration("disk.missing", default: .seconds(1)) == .seconds(1))
    #expect(throws: ConfigurationError.self) { try settings.duration("disk.bad", default: .seconds(1)) }
    do {
      _ = try settings.scoped(to: "disk").duration("worse", default: .seconds(1))
      Issue.record("\"30 parsecs\" must be refused")
    } catch {
      #expect(error.setting == "disk.worse")
      #expect(error.value == "\"30 parsecs\"")
      #expect(error.source == "InMemoryProvider[test], key disk.worse")
    }
  }

  @Test("memory.fileBodyThreshold takes a size or off")
  func fileBodyThreshold() throws {
    func read(_ value: ConfigValue) throws(ConfigurationError) -> Int {
      try MemoryStoreConfiguration(reading: reader(["memory.fileBodyThreshold": value]).scoped(to: "memory"))
        .fileBodyThreshold
    }
    #expect(try read("off") == 0)
    #expect(try read("OFF") == 0)
    #expect(try read(0) == 0)
    #expect(try read("128KiB") == 128 << 10)
    #expect(try read(4096) == 4096)
    #expect(throws: ConfigurationError.self) { try read("sometimes") }
    #expect(try MemoryStoreConfiguration(reading: reader([:]).scoped(to: "memory")).fileBodyThreshold == 64 << 10)
  }

  @Test("booleans accept JSON booleans and the usual words")
  func booleans() throws {
    let settings = reader(["a": true, "b": "off", "c": "Yes", "d": "maybe"])
    #expect(try settings.bool("a", default: false))
    #expect(try !settings.bool("b", default: true))
    #expect(try settings.bool("c", default: false))
    #expect(try settings.bool("missing", default: true))
    #expect(throws: ConfigurationError.self) { try settings.bool("d", default: false) }
  }

  @Test("lists come from arrays or comma-separated text")
  func lists() throws {
    let settings = reader([
      "a": .init(.stringArray(["memory", "disk"]), isSecret: false), "b": " memory , disk ", "c": "",
    ])
    #expect(try settings.stringList("a", default: []) == ["memory", "disk"])
    #expect(try settings.stringList("b", default: []) == ["memory", "disk"])
    #expect(try settings.stringList("c", default: ["x"]) == [])
    #expect(try settings.stringList("missing", default: ["x"]) == ["x"])
  }

  @Test("choices match case-insensitively and list the allowed values when wrong")
  func choices() throws {
    let settings = reader(["a": "S3FIFO", "b": "arc"])
    #expect(try settings.choice("a", default: Policy.lru) == .s3fifo)
    #expect(try settings.choice("missing", default: Policy.lru) == .lru)
    do {
      _ = try settings.choice("b", default: Policy.lru)
      Issue.record("arc must be refused")
    } catch {
      #expect(error.allowed == "one of lru, s3fifo, tinyufo")
    }
  }

  @Test("strings from the command line keep their commas; a bare flag is true")
  func commandLine() throws {
    let settings = try SettingsReader(
      sources: ConfigurationSources(arguments: ["edge-cdn", "--origin-url", "http://o/?a=1,2", "--verbose"]))
    #expect(try settings.string("origin.url", default: "") == "http://o/?a=1,2")
    #expect(try settings.bool("verbose", default: false))
    #expect(try settings.string("missing", default: "d") == "d")
  }
}

@Suite("SettingsReader with a file")
struct SettingsReaderFileTests {
  @Test("JSON booleans read as booleans, and only booleans")
  func fileBooleans() throws {
    let directory = try TemporaryDirectory()
    let file = directory.path + "/flags.json"
    try #"{"feature": {"on": true, "off": false, "one": 1}}"#.write(toFile: file, atomically: true, encoding: .utf8)
    let settings = try SettingsReader(sources: ConfigurationSources(file: file)).scoped(to: "feature")
    #expect(try settings.bool("on", default: false))
    #expect(try !settings.bool("off", default: true))
    #expect(try settings.bool("one", default: false))
    #expect(throws: ConfigurationError.self) { try settings.int("on", default: 0) }
    #expect(try settings.int("one", default: 0) == 1)
    try settings.rejectUnknownSettings()
  }
}
