import EdgeCDNConfiguration
import EdgeCDNStore
import Foundation
import TestSupport
import Testing

/// examples/edge-cdn.json must load, and a configuration written out as JSON must read back equal.
@Suite("Configuration files")
struct ExampleFileTests {
  static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  @Test("examples/edge-cdn.json loads with the values it shows; its store part has no unknown key")
  func exampleFile() throws {
    let path = Self.packageRoot.appendingPathComponent("examples/edge-cdn.json").path
    // The proxy section is read (and checked for typos) by EdgeCDNTests' example test; here the
    // store's sections must load strictly on their own.
    var object = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    #expect(object.removeValue(forKey: "proxy") != nil)
    #expect(Set(object.keys) == ["memory", "disk", "tiered", "shared"])
    let directory = try TemporaryDirectory()
    let storeOnly = directory.path + "/store-only.json"
    try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: storeOnly))
    let configuration = try StoreConfiguration.load(file: storeOnly, environment: [:], arguments: ["edge-cdn"])
    #expect(configuration.memory == MemoryStoreConfiguration(byteBudget: 512 << 20, maxObjectSize: 16 << 20))
    #expect(configuration.disk == DiskStoreConfiguration(path: "edge-cdn-cache"))
    // The example spells out the defaults of the tiered store and the shared tier client.
    #expect(configuration.tiered == TieredStoreConfiguration())
  }

  @Test("a configuration written as JSON with human units reads back equal")
  func roundTrip() throws {
    let original = StoreConfiguration(
      memory: MemoryStoreConfiguration(byteBudget: 3 << 30, maxObjectSize: 1_500_000, shardCount: 128))
    let json = """
      {
        "memory": {
          "byteBudget": "\(ByteSize(bytes: original.memory.byteBudget))",
          "maxObjectSize": "\(ByteSize(bytes: original.memory.maxObjectSize))",
          "shardCount": \(original.memory.shardCount)
        }
      }
      """
    #expect(json.contains("\"3GiB\"") && json.contains("\"1500KB\""))
    let directory = try TemporaryDirectory()
    let path = directory.path + "/round-trip.json"
    try json.write(toFile: path, atomically: true, encoding: .utf8)
    #expect(try StoreConfiguration.load(file: path, environment: [:], arguments: []) == original)
  }
}
