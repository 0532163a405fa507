import EdgeCDNStore
import StorageConformance
import Testing

/// The RAM tier must keep its contract whichever policy picks victims, including one
/// that may decline an object it was just asked to admit.
@Suite("MemoryStore with S3-FIFO and TinyUFO passes StorageConformance", .hangGuard())
struct MemoryStoreWithAdmissionConformanceTests {
  static let budget = 8 << 20

  static func fixture(_ policy: EvictionPolicy) -> StorageFixture<MemoryStore> {
    StorageFixture<MemoryStore>(
      makeStorage: { observer in
        try MemoryStore(
          configuration: MemoryStoreConfiguration(
            byteBudget: budget, maxObjectSize: 4 << 20, shardCount: 16, evictionPolicy: policy),
          observer: observer)
      },
      byteBudget: budget,
      usedBytes: { $0.usedBytes },
      objectCount: { $0.objectCount })
  }

  @Test(arguments: StorageConformance<MemoryStore>.checks)
  func s3fifo(_ check: ConformanceCheck<MemoryStore>) async throws {
    try await check.run(with: Self.fixture(.s3fifo))
  }

  @Test(arguments: StorageConformance<MemoryStore>.checks)
  func tinyufo(_ check: ConformanceCheck<MemoryStore>) async throws {
    try await check.run(with: Self.fixture(.tinyufo))
  }
}
