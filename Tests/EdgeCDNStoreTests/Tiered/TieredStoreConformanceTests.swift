import EdgeCDNStore
import StorageConformance
import Testing

@Suite("TieredStore passes StorageConformance", .hangGuard())
struct TieredStoreConformanceTests {
  @Test("RAM only", arguments: StorageConformance<Tiered>.checks)
  func ramOnly(_ check: ConformanceCheck<Tiered>) async throws {
    try await check.run(with: TieredFixture.ramOnly)
  }

  @Test("RAM and disk", arguments: StorageConformance<Tiered>.checks)
  func ramAndDisk(_ check: ConformanceCheck<Tiered>) async throws {
    try await check.run(with: TieredFixture.ramAndDisk)
  }

  @Test("RAM, disk and shared", arguments: StorageConformance<Tiered>.checks)
  func allTiers(_ check: ConformanceCheck<Tiered>) async throws {
    try await check.run(with: TieredFixture.allTiers)
  }
}
