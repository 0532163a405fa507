import EdgeCDNStore
import NIOCore
import StorageConformance
import Synchronization
import TestSupport

typealias Tiered = TieredStore<MemoryStore, DiskStore>

/// Builds tiered stores for the conformance suite and the tiered tests: a small RAM
/// tier, a small disk in a temporary folder (as the disk tests build it), and an
/// in-process shared tier.
enum TieredFixture {
  static let memoryBudget = 8 << 20

  static func memory(
    observer: any StorageObserver = RemovalRecorder(), maxObjectSize: Int = 4 << 20
  ) throws
    -> MemoryStore
  {
    try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: memoryBudget, maxObjectSize: maxObjectSize, shardCount: 16),
      observer: observer)
  }

  /// Keeps each store's folder alive as long as the store.
  final class Folders: Sendable {
    let all = Mutex<[ObjectIdentifier: TemporaryDirectory]>([:])
  }
  static let folders = Folders()

  static func disk(observer: any StorageObserver = RemovalRecorder()) async throws -> DiskStore {
    let directory = try TemporaryDirectory()
    let store = try await DiskStore.open(
      configuration: DiskFixture.configuration(path: directory.path), observer: observer)
    folders.all.withLock { $0[ObjectIdentifier(store)] = directory }
    return store
  }

  static func close(_ store: Tiered) async throws {
    await store.shutdown()
    if let disk = store.disk {
      try await disk.close()
      _ = folders.all.withLock { $0.removeValue(forKey: ObjectIdentifier(disk)) }
    }
  }

  static let ramOnly = StorageFixture<Tiered>(
    makeStorage: { observer in Tiered(memory: try memory(observer: observer), disk: nil) },
    byteBudget: memoryBudget,
    usedBytes: { $0.memoryTier.usedBytes },
    objectCount: { $0.memoryTier.objectCount },
    tearDown: { try await close($0) })

  static let ramAndDisk = StorageFixture<Tiered>(
    makeStorage: { observer in
      Tiered(memory: try memory(), disk: try await disk(), configuration: .init(promotion: .always))
    },
    tearDown: { try await close($0) })

  static let allTiers = StorageFixture<Tiered>(
    makeStorage: { observer in
      Tiered(
        memory: try memory(), disk: try await disk(), shared: InMemorySharedTier(),
        // Long limits: deadlines run on an event loop, and the whole suite on 2 cores
        // can starve the cooperative pool past a short one (a spurious miss).
        configuration: .init(promotion: .always, shared: .init(callTimeout: .seconds(30), chunkTimeout: .seconds(30))))
    },
    tearDown: { try await close($0) })

  static func body(size: Int, seed: UInt8) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
  }

  static func meta(_ tag: String = "t") -> CacheMeta {
    let now = CacheTime.now()
    return CacheMeta(
      freshUntil: now.adding(seconds: 3600), created: now, staleWhileRevalidateSeconds: 60, staleIfErrorSeconds: 300,
      response: .init(status: 200, reason: "OK"), extensions: Array(tag.utf8))
  }

  static func write<S: Storage>(_ store: S, _ key: CacheKey, _ body: [UInt8], chunk: Int = 4096) async throws {
    let handler = try await store.missHandler(for: key, meta: meta())
    var offset = 0
    repeat {
      let end = min(offset + chunk, body.count)
      try await handler.writeBody(ByteBuffer(bytes: body[offset..<end]), eof: end == body.count)
      offset = end
    } while offset < body.count
    _ = try await handler.finish()
  }

  static func readAll<H: HitHandler>(_ handler: inout H) async throws -> [UInt8] {
    var out: [UInt8] = []
    for _ in 0..<1_000_000 {
      guard let chunk = try await handler.readBody() else { return out }
      out += chunk.readableBytesView
    }
    return out
  }

  static func read<S: Storage>(_ store: S, _ key: CacheKey) async throws -> [UInt8]? {
    guard var hit = try await store.lookup(key) else { return nil }
    let body = try await readAll(&hit.handler)
    try await hit.handler.finish()
    return body
  }

  /// Waits, bounded, until `condition` holds.
  static func eventually(
    timeout: Duration = .seconds(30), _ condition: @Sendable () async throws -> Bool
  ) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
      if try await condition() { return true }
      try await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
  }
}
