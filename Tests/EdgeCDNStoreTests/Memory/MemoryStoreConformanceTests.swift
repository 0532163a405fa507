import EdgeCDNStore
import StorageConformance
import Testing

@Suite("MemoryStore passes StorageConformance", .hangGuard())
struct MemoryStoreConformanceTests {
  static let budget = 8 << 20

  static let fixture = StorageFixture<MemoryStore>(
    makeStorage: { observer in
      try MemoryStore(
        configuration: MemoryStoreConfiguration(byteBudget: budget, maxObjectSize: 4 << 20, shardCount: 16),
        observer: observer)
    },
    byteBudget: budget,
    usedBytes: { $0.usedBytes },
    objectCount: { $0.objectCount })

  /// Every non-empty committed body in a RAM file (memfd), read back with pread.
  static let fileBodyFixture = StorageFixture<MemoryStore>(
    makeStorage: { observer in
      try MemoryStore(
        configuration: MemoryStoreConfiguration(
          byteBudget: budget, maxObjectSize: 4 << 20, shardCount: 16, fileBodyThreshold: 1),
        observer: observer)
    },
    byteBudget: budget,
    usedBytes: { $0.usedBytes },
    objectCount: { $0.objectCount })

  @Test(arguments: StorageConformance<MemoryStore>.checks)
  func conformance(_ check: ConformanceCheck<MemoryStore>) async throws {
    try await check.run(with: Self.fixture)
  }

  @Test(arguments: StorageConformance<MemoryStore>.checks)
  func conformanceWithFileBodies(_ check: ConformanceCheck<MemoryStore>) async throws {
    try await check.run(with: Self.fileBodyFixture)
  }
}
