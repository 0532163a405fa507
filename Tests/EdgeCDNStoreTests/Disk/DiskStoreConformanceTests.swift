import EdgeCDNStore
import Foundation
import StorageConformance
import Synchronization
import TestSupport
import Testing

/// Builds small disk stores in temporary folders for the conformance suite and the
/// disk tests: small regions and fragments so that reclaim and multi-fragment objects
/// happen with little data.
enum DiskFixture {
  static let regionSize = 512 << 10
  static let size = 4096 + 16 * regionSize

  static func configuration(path: String, size: Int = size, regionSize: Int = regionSize) -> DiskStoreConfiguration {
    DiskStoreConfiguration(
      path: path, size: size, regionSize: regionSize, fragmentSize: 64 << 10, maxObjectSize: 3 << 20,
      flushIntervalMilliseconds: 50, reinsertion: .none)
  }

  /// Keeps the folder alive as long as the store.
  final class Folders: Sendable {
    let all = Mutex<[ObjectIdentifier: TemporaryDirectory]>([:])
  }
  static let folders = Folders()

  static let conformance = StorageFixture<DiskStore>(
    makeStorage: { observer in
      let directory = try TemporaryDirectory()
      let store = try await DiskStore.open(configuration: configuration(path: directory.path), observer: observer)
      folders.all.withLock { $0[ObjectIdentifier(store)] = directory }
      return store
    },
    byteBudget: size - 4096,
    usedBytes: { $0.usedBytes },
    objectCount: { $0.objectCount },
    tearDown: { store in
      try await store.close()
      _ = folders.all.withLock { $0.removeValue(forKey: ObjectIdentifier(store)) }
    })
}

@Suite("DiskStore passes StorageConformance", .hangGuard())
struct DiskStoreConformanceTests {
  @Test(arguments: StorageConformance<DiskStore>.checks)
  func conformance(_ check: ConformanceCheck<DiskStore>) async throws {
    try await check.run(with: DiskFixture.conformance)
  }
}
