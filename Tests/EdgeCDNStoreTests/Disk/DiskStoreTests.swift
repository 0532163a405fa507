import Foundation
import NIOCore
import StorageConformance
import TestSupport
import Testing

@testable import EdgeCDNStore

/// Helpers shared by the disk tests.
enum DiskTestSupport {
  static func meta(_ tag: String) -> CacheMeta {
    let now = CacheTime.now()
    return CacheMeta(
      freshUntil: now.adding(seconds: 3600), created: now, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0,
      response: .init(status: 200, reason: "OK", fields: [.init("etag", tag)]), extensions: Array(tag.utf8))
  }

  static func body(size: Int, seed: UInt8) -> [UInt8] { ConformanceContext<DiskStore>.body(size: size, seed: seed) }

  static func write(
    _ store: DiskStore, _ key: CacheKey, _ body: [UInt8], tag: String = "v1", chunk: Int = 8192
  )
    async throws
  {
    let handler = try await store.missHandler(for: key, meta: meta(tag))
    var offset = 0
    repeat {
      let end = min(offset + chunk, body.count)
      try await handler.writeBody(ByteBuffer(bytes: body[offset..<end]), eof: end == body.count)
      offset = end
    } while offset < body.count
    _ = try await handler.finish()
  }

  static func read(_ store: DiskStore, _ key: CacheKey) async throws -> (meta: CacheMeta, body: [UInt8])? {
    guard var hit = try await store.lookup(key) else { return nil }
    var out = [UInt8]()
    while let chunk = try await hit.handler.readBody() { out.append(contentsOf: chunk.readableBytesView) }
    return (hit.meta, out)
  }

  static func key(_ name: String) -> CacheKey { CacheKey(namespace: "disk-test", primary: name) }
}

@Suite("DiskStore persistence, reclaim and configuration", .hangGuard())
struct DiskStoreTests {
  typealias T = DiskTestSupport

  /// `direct`: region writes bypass the page cache (skipped where the temporary folder's
  /// file system refuses O_DIRECT, as tmpfs does: the store would write buffered).
  @Test("objects, purges and meta updates survive a clean reopen", arguments: [true, false])
  func reopenAfterClose(direct: Bool) async throws {
    let directory = try TemporaryDirectory()
    try DirectWrites.skipUnlessAvailable(direct, in: directory.path)
    var configuration = DiskFixture.configuration(path: directory.path)
    configuration.directWrites = direct
    let sizes = [0, 1, 1000, 16_384, 16_385, 65_536, 200_000, 1 << 20]
    do {
      let store = try await DiskStore.open(configuration: configuration)
      for (i, size) in sizes.enumerated() {
        try await T.write(store, T.key("object-\(i)"), T.body(size: size, seed: UInt8(i)), chunk: 7000)
      }
      try await T.write(store, T.key("purged"), T.body(size: 5000, seed: 99))
      #expect(try await store.purge(T.key("purged").compact, reason: .invalidation))
      #expect(try await store.updateMeta(T.key("object-3"), meta: T.meta("updated")))
      try await T.write(store, T.key("rewritten"), T.body(size: 3000, seed: 1), tag: "first")
      try await T.write(store, T.key("rewritten"), T.body(size: 4000, seed: 2), tag: "second")
      #expect(store.writesDirect == direct, "region writes went \(DirectWrites.path(store.writesDirect))")
      try await store.close()
    }
    let store = try await DiskStore.open(configuration: configuration)
    #expect(store.recoveryReport.corruptRecords == 0)
    for (i, size) in sizes.enumerated() {
      let object = try await T.read(store, T.key("object-\(i)"))
      #expect(object?.body == T.body(size: size, seed: UInt8(i)), "object \(i) of \(size) bytes after reopen")
    }
    #expect(try await T.read(store, T.key("object-3"))?.meta.extensions == Array("updated".utf8))
    #expect(try await T.read(store, T.key("purged")) == nil, "a purge must survive a restart")
    let rewritten = try await T.read(store, T.key("rewritten"))
    #expect(rewritten?.body == T.body(size: 4000, seed: 2) && rewritten?.meta.extensions == Array("second".utf8))
    #expect(store.objectCount == sizes.count + 1)
    try await store.close()
  }

  @Test("a clean close leaves an index snapshot that the next open uses once; a damaged one is ignored")
  func snapshot() async throws {
    let directory = try TemporaryDirectory()
    let configuration = DiskFixture.configuration(path: directory.path)
    let snapshotPath = directory.path + "/cache.data.index"
    do {
      let store = try await DiskStore.open(configuration: configuration)
      for i in 0..<60 { try await T.write(store, T.key("s\(i)"), T.body(size: 30_000 + i, seed: UInt8(i))) }
      #expect(try await store.purge(T.key("s7").compact, reason: .invalidation))
      try await store.close()
    }
    #expect(FileManager.default.fileExists(atPath: snapshotPath))
    let fromSnapshot = try await DiskStore.open(configuration: configuration)
    #expect(fromSnapshot.recoveryReport.fromSnapshot)
    #expect(!FileManager.default.fileExists(atPath: snapshotPath), "a snapshot is used once")
    let expected = fromSnapshot.objectCount
    #expect(try await T.read(fromSnapshot, T.key("s7")) == nil)
    var present: [Int] = []
    for i in 0..<60 where i != 7 {
      if let object = try await T.read(fromSnapshot, T.key("s\(i)")) {
        #expect(object.body == T.body(size: 30_000 + i, seed: UInt8(i)))
        present.append(i)
      }
    }
    #expect(present.count == expected)
    // Writes after a snapshot open go on as usual, and reclaim works on its region table.
    for i in 60..<200 { try await T.write(fromSnapshot, T.key("s\(i)"), T.body(size: 30_000, seed: UInt8(i % 256))) }
    try await fromSnapshot.close()

    // Damage the snapshot: the next open replays the log and finds the same objects.
    let bytes = try Data(contentsOf: URL(fileURLWithPath: snapshotPath))
    var damaged = [UInt8](bytes)
    damaged[damaged.count / 2] ^= 0xFF
    try Data(damaged).write(to: URL(fileURLWithPath: snapshotPath))
    let replayed = try await DiskStore.open(configuration: configuration)
    #expect(!replayed.recoveryReport.fromSnapshot)
    var found = 0
    for i in 0..<200 {
      if let object = try await T.read(replayed, T.key("s\(i)")) {
        found += 1
        let size = i < 60 ? 30_000 + i : 30_000
        #expect(object.body == T.body(size: size, seed: UInt8(i % 256)))
      }
    }
    #expect(found == replayed.objectCount && found > 0)
    #expect(try await T.read(replayed, T.key("s7")) == nil)
    try await replayed.close()
  }

  @Test("a crash after flush keeps flushed objects; unflushed ones are absent or whole")
  func reopenAfterCrashCopy() async throws {
    let directory = try TemporaryDirectory()
    let copy = try TemporaryDirectory()
    let configuration = DiskFixture.configuration(path: directory.path)
    let store = try await DiskStore.open(configuration: configuration)
    for i in 0..<20 { try await T.write(store, T.key("durable-\(i)"), T.body(size: 30_000, seed: UInt8(i))) }
    try await store.flush()
    for i in 0..<20 { try await T.write(store, T.key("late-\(i)"), T.body(size: 30_000, seed: UInt8(100 + i))) }
    // The file as the kernel has it now, without close: what a kill -9 leaves.
    try FileManager.default.copyItem(
      atPath: directory.path + "/cache.data", toPath: copy.path + "/cache.data")
    let reopened = try await DiskStore.open(configuration: DiskFixture.configuration(path: copy.path))
    for i in 0..<20 {
      #expect(try await T.read(reopened, T.key("durable-\(i)"))?.body == T.body(size: 30_000, seed: UInt8(i)))
      if let late = try await T.read(reopened, T.key("late-\(i)")) {
        #expect(late.body == T.body(size: 30_000, seed: UInt8(100 + i)))
      }
    }
    try await reopened.close()
    try await store.close()
  }

  @Test("region reclaim removes keys from the index and tells the eviction manager")
  func reclaimTellsEvictionManager() async throws {
    let directory = try TemporaryDirectory()
    let manager = ShardedLRU(capacity: 1 << 40)
    let recorder = RemovalRecorder()
    let store = try await DiskStore.open(
      configuration: DiskFixture.configuration(path: directory.path), evictionManager: manager, observer: recorder)
    var keys: [CacheKey] = []
    for i in 0..<300 {
      let key = T.key("fill-\(i)")
      keys.append(key)
      try await T.write(store, key, T.body(size: 50_000, seed: UInt8(i % 256)))
    }
    var present = 0
    for key in keys {
      let hit = try await store.lookup(key) != nil
      if hit { present += 1 }
      #expect(manager.peek(key.compact) == hit, "the eviction manager must track exactly the keys stored")
    }
    #expect(present > 0 && present < keys.count)
    #expect(store.statistics.objectsReclaimed == keys.count - present)
    #expect(Set(recorder.all.map(\.key.combinedHash)).count == keys.count - present)
    #expect(store.objectCount == present)
    try await store.close()
  }

  @Test("reads of objects read since written are reinserted at reclaim")
  func reinsertionKeepsReadObjects() async throws {
    let directory = try TemporaryDirectory()
    var configuration = DiskFixture.configuration(path: directory.path)
    configuration.reinsertion = .accessedSinceWritten
    let store = try await DiskStore.open(configuration: configuration)
    let hot = T.key("hot")
    try await T.write(store, hot, T.body(size: 2000, seed: 7))
    for i in 0..<400 {
      _ = try await T.read(store, hot)
      try await T.write(store, T.key("cold-\(i)"), T.body(size: 30_000, seed: UInt8(i % 256)))
    }
    #expect(store.statistics.regionsReclaimed > 0)
    #expect(store.statistics.objectsReinserted > 0)
    #expect(try await T.read(store, hot)?.body == T.body(size: 2000, seed: 7))
    try await store.close()
  }

  @Test("invalid settings are rejected naming the setting and the range")
  func configurationValidation() throws {
    let base = DiskStoreConfiguration(
      path: "/tmp/x", size: 64 << 20, regionSize: 1 << 20, fragmentSize: 64 << 10,
      maxObjectSize: 8 << 20)
    try base.validate()
    let cases: [(String, (inout DiskStoreConfiguration) -> Void)] = [
      ("disk.path", { $0.path = "" }),
      ("disk.regionSize", { $0.regionSize = 1000 }),
      ("disk.size", { $0.size = 1 << 20 }),
      ("disk.fragmentSize", { $0.fragmentSize = 1 << 20 }),
      ("disk.maxObjectSize", { $0.maxObjectSize = 0 }),
      ("disk.flushInterval", { $0.flushIntervalMilliseconds = 0 }),
    ]
    for (setting, change) in cases {
      var configuration = base
      change(&configuration)
      #expect(throws: ConfigurationError.self) { try configuration.validate() }
      do {
        try configuration.validate()
      } catch {
        #expect(error.setting == setting)
        #expect(error.description.contains(setting) && error.description.contains("allowed"))
      }
    }
  }

  @Test("a size of whole regions gives that many regions: 64MiB of the default 16 MiB regions is the minimum")
  func sizeInWholeRegions() throws {
    var configuration = DiskStoreConfiguration(path: "/tmp/x", size: 64 << 20)
    configuration.regionSize = 16 << 20
    configuration.maxObjectSize = 8 << 20
    try configuration.validate()
    #expect(configuration.regionCount == 4)
    configuration.size = (64 << 20) - 1
    #expect(throws: ConfigurationError.self) { try configuration.validate() }
  }

  @Test("the index holds at most 16 bytes per object")
  func indexBytesPerObject() {
    let index = DiskIndex()
    // Seeded: with random keys, about one run in a hundred had one of the first 1000 keys
    // share its 34 tag bits with a later one, which the checks below then miss.
    var random = SplitMix64(seed: 16)
    let count = 200_000
    var hashes: [CacheHash] = []
    for i in 0..<count {
      let hash = CacheHash(high: random.next(), low: random.next())
      hashes.append(hash)
      index.insert(hash, offset: 4096 + i * 16)
    }
    // 34 hash bits tell entries apart: about one pair in 200 000 random keys shares them.
    #expect(index.count >= count - 10)
    #expect(Double(index.memoryBytes) / Double(count) <= 16)
    for (i, hash) in hashes.enumerated().prefix(1000) {
      #expect(index.candidates(hash).contains(4096 + i * 16))
    }
    for hash in hashes.prefix(1000) { index.remove(hash) }
    #expect(index.count >= count - 1010 && index.count <= count - 1000)
  }
}
