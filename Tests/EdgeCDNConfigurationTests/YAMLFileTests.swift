import EdgeCDNConfiguration
import EdgeCDNStore
import Foundation
import TestSupport
import Testing

/// A file whose name ends in .yaml or .yml is read as YAML, with the JSON file's rules: same keys,
/// same typo check, nulls keep defaults, errors name the file and key.
@Suite("YAML configuration files")
struct YAMLFileTests {
  func write(_ contents: String, name: String = "edge-cdn.yaml", in directory: TemporaryDirectory) throws -> String {
    let path = directory.path + "/" + name
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  @Test("YAML values are read like text from the environment, and precedence holds", arguments: ["yaml", "yml"])
  func readsYAML(fileExtension: String) throws {
    let directory = try TemporaryDirectory()
    let path = try write(
      """
      memory:
        byteBudget: 1GiB
        maxObjectSize: 1048576
        shardCount: 8
      disk:
        enabled: no
      tiered:
        promotion: always
        writeBehind: false
      shared:
        breaker: {failureThreshold: 3, openDuration: 2s}
      """, name: "edge-cdn.\(fileExtension)", in: directory)
    let configuration = try StoreConfiguration.load(
      file: path, environment: ["EDGE_CDN_MEMORY_SHARD_COUNT": "16"], arguments: ["edge-cdn"])
    #expect(
      configuration.memory == MemoryStoreConfiguration(byteBudget: 1 << 30, maxObjectSize: 1 << 20, shardCount: 16))
    #expect(configuration.disk == nil)
    #expect(configuration.tiered.promotion == .always)
    #expect(!configuration.tiered.writeBehind)
    #expect(configuration.tiered.shared.breaker == .init(failureThreshold: 3, openDuration: .seconds(2)))
  }

  @Test("a YAML null keeps the default")
  func nullKeepsDefault() throws {
    let directory = try TemporaryDirectory()
    let path = try write("memory:\n  shardCount: ~\n  byteBudget:\n  maxObjectSize: 1MiB\n", in: directory)
    let configuration = try StoreConfiguration.load(file: path, environment: [:], arguments: ["edge-cdn"])
    #expect(configuration.memory == MemoryStoreConfiguration(maxObjectSize: 1 << 20))
  }

  @Test("a misspelt YAML key is refused with a suggestion")
  func typo() throws {
    let error = try #require(try loadError(file: "memory:\n  shardCont: 8\n", named: "edge-cdn.yaml"))
    #expect(error.setting == "memory.shardCont")
    #expect(error.value == "\"8\"")
    #expect(error.allowed.hasSuffix("did you mean memory.shardCount?"))
    #expect(error.source?.hasPrefix("file ") == true)
  }

  @Test("a wrong YAML value names the file and key")
  func wrongValue() throws {
    let error = try #require(try loadError(file: "memory:\n  shardCount: true\n", named: "edge-cdn.yaml"))
    #expect(error.setting == "memory.shardCount")
    #expect(error.value == "\"true\"")
    #expect(error.allowed == "an integer")
    #expect(error.source?.hasSuffix("edge-cdn.yaml, key memory.shardCount") == true)
    let range = try #require(try loadError(file: "shared:\n  maxAttempts: 0\n", named: "edge-cdn.yaml"))
    #expect(range.setting == "shared.maxAttempts")
    #expect(range.source?.hasSuffix("edge-cdn.yaml, key shared.maxAttempts") == true)
  }

  @Test("malformed YAML and a top level that is not a mapping are refused with the path")
  func malformed() throws {
    let broken = try #require(try loadError(file: "memory:\n  byteBudget: [1GiB\n", named: "edge-cdn.yaml"))
    #expect(broken.setting == "configuration file")
    #expect(broken.value.hasSuffix("edge-cdn.yaml\""))
    #expect(broken.allowed.hasPrefix("well-formed YAML ("))
    let list = try #require(try loadError(file: "- 1\n- 2\n", named: "edge-cdn.yaml"))
    #expect(list.allowed.hasPrefix("a YAML mapping at the top level"))
  }
}
