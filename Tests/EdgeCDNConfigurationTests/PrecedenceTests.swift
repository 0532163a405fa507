import EdgeCDNConfiguration
import EdgeCDNStore
import Foundation
import TestSupport
import Testing

@Suite("Configuration precedence")
struct PrecedenceTests {
  @Test("with no sources every setting keeps its default")
  func defaults() throws {
    let configuration = try StoreConfiguration.load(file: nil, environment: [:], arguments: ["edge-cdn"])
    #expect(configuration == StoreConfiguration())
  }

  @Test("command line beats environment beats file beats default, per setting")
  func precedence() throws {
    let directory = try TemporaryDirectory()
    let file = directory.path + "/edge-cdn.json"
    try #"{"memory": {"byteBudget": "1GiB", "maxObjectSize": "8MiB", "shardCount": 8}}"#
      .write(toFile: file, atomically: true, encoding: .utf8)

    let fileOnly = try StoreConfiguration.load(file: file, environment: [:], arguments: ["edge-cdn"])
    #expect(fileOnly.memory == MemoryStoreConfiguration(byteBudget: 1 << 30, maxObjectSize: 8 << 20, shardCount: 8))

    let environment = ["EDGE_CDN_MEMORY_BYTE_BUDGET": "2GB", "EDGE_CDN_MEMORY_SHARD_COUNT": "16", "PATH": "/bin"]
    let withEnvironment = try StoreConfiguration.load(file: file, environment: environment, arguments: ["edge-cdn"])
    #expect(
      withEnvironment.memory
        == MemoryStoreConfiguration(byteBudget: 2_000_000_000, maxObjectSize: 8 << 20, shardCount: 16))

    let arguments = ["edge-cdn", "--memory-shard-count", "32", "--memory-max-object-size=1MiB"]
    let withArguments = try StoreConfiguration.load(file: file, environment: environment, arguments: arguments)
    #expect(
      withArguments.memory
        == MemoryStoreConfiguration(byteBudget: 2_000_000_000, maxObjectSize: 1 << 20, shardCount: 32)
    )
  }

  @Test("a small disk size alone is valid: an unset disk.maxObjectSize is lowered to what it allows")
  func smallDiskSize() throws {
    let configuration = try StoreConfiguration.load(
      file: nil, environment: [:], arguments: ["edge-cdn", "--disk-size", "64MiB"])
    let disk = try #require(configuration.disk)
    try disk.validate()
    #expect(disk.size == 64 << 20)
    #expect(disk.maxObjectSize == 16 << 20)
    // Set explicitly, a value the size cannot hold is still refused, naming the setting.
    #expect(throws: ConfigurationError.self) {
      try StoreConfiguration.load(
        file: nil, environment: [:], arguments: ["edge-cdn", "--disk-size", "64MiB", "--disk-max-object-size", "32MiB"])
    }
  }

  @Test("the resolved settings say which source won for each key")
  func resolvedSettings() throws {
    let directory = try TemporaryDirectory()
    let file = directory.path + "/edge-cdn.json"
    try #"{"memory": {"byteBudget": 1073741824}}"#.write(toFile: file, atomically: true, encoding: .utf8)
    let settings = try SettingsReader(
      sources: ConfigurationSources(
        file: file, environment: ["EDGE_CDN_MEMORY_SHARD_COUNT": "8"], arguments: ["edge-cdn"]))
    _ = try StoreConfiguration(reading: settings)
    #expect(
      settings.resolvedSettings.map(\.description).filter { $0.hasPrefix("memory.") } == [
        "memory.byteBudget = 1GiB (file \(file), key memory.byteBudget)",
        "memory.evictionPolicy = s3fifo (default)",
        "memory.fileBodyThreshold = 64KiB (default)",
        "memory.maxObjectSize = 16MiB (default)",
        "memory.shardCount = 8 (environment variable EDGE_CDN_MEMORY_SHARD_COUNT)",
      ])
    #expect(settings.resolvedSettings.map(\.description).contains("disk.size = 1GiB (default)"))
  }

  @Test("--config and EDGE_CDN_CONFIG name the file when none is given, the command line first")
  func fileFromSources() throws {
    let directory = try TemporaryDirectory()
    let first = directory.path + "/first.json"
    let second = directory.path + "/second.json"
    try #"{"memory": {"shardCount": 3}}"#.write(toFile: first, atomically: true, encoding: .utf8)
    try #"{"memory": {"shardCount": 5}}"#.write(toFile: second, atomically: true, encoding: .utf8)

    let fromEnvironment = try StoreConfiguration.load(
      file: nil, environment: ["EDGE_CDN_CONFIG": first], arguments: ["edge-cdn"])
    #expect(fromEnvironment.memory.shardCount == 3)
    let fromArguments = try StoreConfiguration.load(
      file: nil, environment: ["EDGE_CDN_CONFIG": first], arguments: ["edge-cdn", "--config", second])
    #expect(fromArguments.memory.shardCount == 5)
    let explicit = try StoreConfiguration.load(
      file: first, environment: [:], arguments: ["edge-cdn", "--config", second])
    #expect(explicit.memory.shardCount == 3)
  }

  @Test("a JSON null leaves the default in force")
  func jsonNull() throws {
    let directory = try TemporaryDirectory()
    let file = directory.path + "/null.json"
    try #"{"memory": {"shardCount": null, "byteBudget": "1GiB"}}"#.write(
      toFile: file, atomically: true, encoding: .utf8)
    let configuration = try StoreConfiguration.load(file: file, environment: [:], arguments: ["edge-cdn"])
    #expect(configuration.memory == MemoryStoreConfiguration(byteBudget: 1 << 30))
  }

  @Test("sizes are read from JSON numbers of bytes and from text with units alike")
  func sizeForms() throws {
    let directory = try TemporaryDirectory()
    let file = directory.path + "/sizes.json"
    try #"{"memory": {"byteBudget": 1048576, "maxObjectSize": "64k"}}"#
      .write(toFile: file, atomically: true, encoding: .utf8)
    let configuration = try StoreConfiguration.load(file: file, environment: [:], arguments: ["edge-cdn"])
    #expect(configuration.memory.byteBudget == 1 << 20)
    #expect(configuration.memory.maxObjectSize == 64 << 10)
  }
}

@Suite("Configuration loading from async code")
struct AsyncLoadingTests {
  @Test("the async load reads the file off the cooperative pool with the same result")
  func asyncLoad() async throws {
    let directory = try TemporaryDirectory()
    let file = directory.path + "/edge-cdn.json"
    try #"{"memory": {"shardCount": 7}}"#.write(toFile: file, atomically: true, encoding: .utf8)
    let sources = ConfigurationSources(file: file, environment: ["EDGE_CDN_MEMORY_BYTE_BUDGET": "1GiB"])
    let configuration = try await StoreConfiguration.load(from: sources)
    #expect(configuration.memory == MemoryStoreConfiguration(byteBudget: 1 << 30, shardCount: 7))
    let settings = try await SettingsReader.reading(sources)
    #expect(try settings.int("memory.shardCount", default: 0) == 7)
    await #expect(throws: ConfigurationError.self) {
      try await StoreConfiguration.load(from: ConfigurationSources(file: directory.path + "/missing.json"))
    }
  }
}

@Suite("Disk tier settings")
struct DiskSettingsTests {
  @Test("disk settings are read with units, can be disabled, and errors name the key")
  func diskSettings() throws {
    let configuration = try StoreConfiguration.load(
      file: nil,
      environment: ["EDGE_CDN_DISK_SIZE": "64MiB", "EDGE_CDN_DISK_FLUSH_INTERVAL": "250ms"],
      arguments: [
        "edge-cdn", "--disk-path", "/var/cache/edge", "--disk-region-size", "1MiB", "--disk-fragment-size", "256KiB",
        "--disk-max-object-size", "8MiB",
      ])
    let disk = try #require(configuration.disk)
    #expect(disk.size == 64 << 20)
    #expect(disk.regionSize == 1 << 20)
    #expect(disk.flushIntervalMilliseconds == 250)
    #expect(disk.path == "/var/cache/edge")
    #expect(disk.directWrites)
    let buffered = try StoreConfiguration.load(
      file: nil, environment: ["EDGE_CDN_DISK_DIRECT_WRITES": "false"], arguments: ["edge-cdn"])
    #expect(buffered.disk?.directWrites == false)

    let ramOnly = try StoreConfiguration.load(
      file: nil, environment: ["EDGE_CDN_DISK_ENABLED": "false"], arguments: ["edge-cdn"])
    #expect(ramOnly.disk == nil)

    let error = #expect(throws: ConfigurationError.self) {
      try StoreConfiguration.load(
        file: nil, environment: ["EDGE_CDN_DISK_FLUSH_INTERVAL": "2m"], arguments: ["edge-cdn"])
    }
    #expect(error?.setting == "disk.flushInterval")
    #expect(error?.description.contains("EDGE_CDN_DISK_FLUSH_INTERVAL") == true)
  }
}
