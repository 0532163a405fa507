import TestSupport
import Testing

@testable import EdgeCDNStore

@Suite("S3-FIFO and TinyUFO state files", .hangGuard())
struct S3FIFOPersistenceTests {
  static func key(_ i: Int) -> CompactCacheKey { CacheKey(primary: "k\(i)").compact }
  static let never = CacheTime(millisecondsSinceEpoch: 0)

  @Test("save then load keeps keys, weights, queues and reuse", arguments: [EvictionPolicy.s3fifo, .tinyufo])
  func roundTrip(policy: EvictionPolicy) async throws {
    let directory = try TemporaryDirectory()
    let manager = policy.makeManager(capacity: 1000, shards: 1)
    for i in 0..<10 { _ = manager.admit(Self.key(i), size: 100, freshUntil: Self.never) }
    manager.access(Self.key(3), size: 100, freshUntil: Self.never)
    try await manager.save(to: directory.path)
    let restored = policy.makeManager(capacity: 1000, shards: 1)
    try await restored.load(from: directory.path)
    #expect(restored.totalItems == 10 && restored.totalSize == 1000)
    for i in 0..<10 { #expect(restored.peek(Self.key(i))) }
    // Order and reuse survive: key 3 (reused) is kept while keys 0, 1, 2, 4 leave first.
    #expect(restored.evict(atLeast: 400) == [0, 1, 2, 4].map(Self.key))
    #expect(restored.peek(Self.key(3)))
  }

  @Test(
    "a corrupt, truncated or foreign state file throws and leaves the manager empty",
    arguments: [EvictionPolicy.s3fifo, .tinyufo])
  func corruptState(policy: EvictionPolicy) async throws {
    let directory = try TemporaryDirectory()
    let manager = policy.makeManager(capacity: 1000, shards: 4)
    for i in 0..<5 { _ = manager.admit(Self.key(i), size: 100, freshUntil: Self.never) }
    try await manager.save(to: directory.path)
    let path = directory.path + "/" + EvictionStateFile.fileName
    let good = try #require(try DurableFile.readAll(path: path))

    var flipped = good
    flipped[good.count / 2] ^= 0x40
    let other: EvictionPolicy = policy == .s3fifo ? .tinyufo : .s3fifo
    let foreign = EvictionStateFile(policy: other.rawValue, entries: []).encoded()
    let lruFile = EvictionStateFile(policy: ShardedLRU.policyName, entries: []).encoded()
    for bad in [Array(good.prefix(good.count - 3)), flipped, foreign, lruFile, [UInt8](repeating: 7, count: 100), []] {
      try DurableFile.replace(path: path, with: bad)
      let restored = policy.makeManager(capacity: 1000, shards: 4)
      _ = restored.admit(Self.key(100), size: 10, freshUntil: Self.never)
      await #expect(throws: CacheError.self) { try await restored.load(from: directory.path) }
      #expect(restored.totalItems == 0 && restored.totalSize == 0)
      #expect(!restored.peek(Self.key(100)))
    }
    // The foreign file's error names both policies.
    try DurableFile.replace(path: path, with: foreign)
    do {
      try await policy.makeManager(capacity: 1000, shards: 4).load(from: directory.path)
      Issue.record("a foreign file loaded")
    } catch {
      #expect("\(error)".contains("saved by policy \(other.rawValue), not \(policy.rawValue)"))
    }
    // No file at all: an empty manager and no error.
    let empty = try TemporaryDirectory()
    let fresh = policy.makeManager(capacity: 1000, shards: 4)
    try await fresh.load(from: empty.path)
    #expect(fresh.totalItems == 0)
  }
}
