import EdgeCDNStore
import Testing

@Suite("StoreConfiguration")
struct StoreConfigurationTests {
  @Test("the defaults are valid")
  func defaultsAreValid() throws {
    try StoreConfiguration().validate()
    #expect(StoreConfiguration().memory == MemoryStoreConfiguration())
  }

  @Test(
    "each memory setting out of range is refused with its key, value and range",
    arguments: [
      (MemoryStoreConfiguration(byteBudget: 4095), "memory.byteBudget", "4095", "at least 4096 bytes"),
      (MemoryStoreConfiguration(byteBudget: -1), "memory.byteBudget", "-1", "at least 4096 bytes"),
      (MemoryStoreConfiguration(maxObjectSize: 0), "memory.maxObjectSize", "0", "1...268435456"),
      (
        MemoryStoreConfiguration(byteBudget: 1 << 20, maxObjectSize: 2 << 20), "memory.maxObjectSize", "2097152",
        "1...1048576"
      ),
      (MemoryStoreConfiguration(shardCount: 0), "memory.shardCount", "0", "1...4096"),
      (MemoryStoreConfiguration(shardCount: 4097), "memory.shardCount", "4097", "1...4096"),
    ] as [(MemoryStoreConfiguration, String, String, String)])
  func memoryValidation(memory: MemoryStoreConfiguration, setting: String, value: String, allowed: String) {
    do {
      try StoreConfiguration(memory: memory).validate()
      Issue.record("\(memory) passed validation")
    } catch {
      #expect(error.setting == setting)
      #expect(error.value == value)
      #expect(error.allowed.contains(allowed), "\(error)")
      #expect(error.source == nil)
    }
  }

  @Test("an error names its source when it has one")
  func errorDescription() {
    let error = ConfigurationError(
      setting: "memory.shardCount", value: "0", allowed: "1...4096", source: "environment variable X")
    #expect(error.description == "invalid memory.shardCount = 0 (from environment variable X): allowed 1...4096")
  }
}
