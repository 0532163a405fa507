import Foundation
import MetricsTestKit
import NIOCore
import StorageConformance
import TestSupport
import Testing

@testable import EdgeCDNStore

#if canImport(Glibc)
  import Glibc
#endif

/// Damage and failures: the store keeps serving what it can, reports itself
/// unhealthy, never traps and never returns wrong bytes.
@Suite("DiskStore under corruption and I/O faults", .hangGuard())
struct DiskStoreFaultTests {
  typealias T = DiskTestSupport

  /// Overwrites bytes of the cache file at `offset`.
  static func scribble(_ path: String, at offset: Int, bytes: [UInt8]) throws {
    let handle = try #require(FileHandle(forWritingAtPath: path + "/cache.data"))
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: Data(bytes))
    try handle.close()
  }

  /// The file offset where `needle` first occurs.
  static func find(_ needle: [UInt8], in path: String) throws -> Int {
    let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path + "/cache.data")))
    var i = 0
    while i + needle.count <= data.count {
      if data[i] == needle[0] && Array(data[i..<(i + needle.count)]) == needle { return i }
      i += 1
    }
    throw CacheError.invalidState(key: nil ?? CacheHash(high: 0, low: 0), reason: "pattern not in file")
  }

  static func seeded(_ directory: TemporaryDirectory, count: Int = 10, size: Int = 100_000) async throws {
    let store = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path))
    for i in 0..<count { try await T.write(store, T.key("k\(i)"), T.body(size: size, seed: UInt8(i))) }
    try await store.close()
  }

  @Test("a damaged body block is a corruptBody error and a purge, counted and reported; others still serve")
  func corruptBody() async throws {
    let directory = try TemporaryDirectory()
    try await Self.seeded(directory)
    let body = T.body(size: 100_000, seed: 3)
    let at = try Self.find(Array(body[40_000..<40_064]), in: directory.path)
    try Self.scribble(directory.path, at: at + 10, bytes: [0xFF, 0x00, 0xAA])
    let recorder = RemovalRecorder()
    let store = try await DiskStore.open(
      configuration: DiskFixture.configuration(path: directory.path), observer: recorder)
    var hit = try #require(try await store.lookup(T.key("k3")))
    var read = [UInt8]()
    do {
      while let chunk = try await hit.handler.readBody() { read.append(contentsOf: chunk.readableBytesView) }
      Issue.record("a damaged body must not be read to its end")
    } catch {
      if case .corruptBody(let key, _) = error {
        #expect(key == T.key("k3").combinedHash)
      } else {
        Issue.record("expected corruptBody, got \(error)")
      }
    }
    #expect(body.starts(with: read), "bytes returned before the damage must be the right ones")
    #expect(read.count <= 32_768, "nothing of the damaged block may be returned")
    #expect(try await store.lookup(T.key("k3")) == nil, "a corrupt object is purged")
    #expect(store.statistics.corruptRecords == 1)
    // Reported with the weight it was charged (meta and body), not 0.
    let removal = recorder.all.first { $0.reason == .corrupt && $0.key.combinedHash == T.key("k3").combinedHash }
    #expect(removal != nil)
    #expect(removal.map { $0.weight > 100_000 && $0.weight < 100_000 + 1000 } == true, "\(String(describing: removal))")
    for i in [0, 1, 2, 4, 9] {
      #expect(try await T.read(store, T.key("k\(i)"))?.body == T.body(size: 100_000, seed: UInt8(i)))
    }
    // A range that avoids the damaged block is still exact for another object.
    var other = try #require(try await store.lookup(T.key("k5")))
    try await other.handler.seek(start: 70_001, end: 70_100)
    let range = try #require(try await other.handler.readBody())
    #expect(Array(range.readableBytesView) == Array(T.body(size: 100_000, seed: 5)[70_001..<70_100]))
    // Health notes it (the tier still serves: ok); metrics count it once however often refreshed.
    let health = await store.health()
    #expect(health.first?.status == .ok)
    #expect(health.first?.reasons.first?.contains("1 records failed their checksum") == true)
    let metrics = TestMetrics()
    let exporter = DiskTierMetrics(store: store, factory: metrics)
    exporter.refresh()
    #expect(try metrics.expectCounter("edge_cdn_store_disk_corrupt_records_total", [("tier", "disk")]).totalValue == 1)
    #expect(
      try metrics.expectMeter("edge_cdn_store_disk_objects", [("tier", "disk")]).lastValue
        == Double(store.statistics.objects))
    try await store.close()
  }

  @Test("a damaged head is a miss when read, and the scan at open stops at it")
  func corruptHead() async throws {
    let directory = try TemporaryDirectory()
    let store = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path))
    for i in 0..<6 { try await T.write(store, T.key("small-\(i)"), T.body(size: 1000, seed: UInt8(i))) }
    try await store.close()
    // Force the log replay (a clean close left a snapshot of the index).
    try FileManager.default.removeItem(atPath: directory.path + "/cache.data.index")
    // The inline body of small-2 lies in its head record: damage it.
    let at = try Self.find(Array(T.body(size: 1000, seed: 2)[100..<164]), in: directory.path)
    try Self.scribble(directory.path, at: at, bytes: [1, 2, 3, 4])
    let reopened = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path))
    #expect(reopened.recoveryReport.corruptRecords == 1)
    #expect(try await T.read(reopened, T.key("small-2")) == nil)
    for i in [0, 1] {
      #expect(try await T.read(reopened, T.key("small-\(i)"))?.body == T.body(size: 1000, seed: UInt8(i)))
    }
    // Records after the damage in that region are not trusted: absent, never wrong.
    for i in 3..<6 {
      if let object = try await T.read(reopened, T.key("small-\(i)")) {
        #expect(object.body == T.body(size: 1000, seed: UInt8(i)))
      }
    }
    // Damage found while running: a miss, dropped and counted.
    try await T.write(reopened, T.key("later"), T.body(size: 1000, seed: 50))
    try await reopened.close()
    try FileManager.default.removeItem(atPath: directory.path + "/cache.data.index")
    let third = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path))
    let laterAt = try Self.find(Array(T.body(size: 1000, seed: 50)[0..<64]), in: directory.path)
    try Self.scribble(directory.path, at: laterAt + 500, bytes: [9, 9, 9])
    #expect(try await third.lookup(T.key("later")) == nil)
    #expect(third.statistics.corruptRecords == third.recoveryReport.corruptRecords + 1)
    try await third.close()
  }

  @Test("a truncated cache file serves what is left and accepts writes")
  func truncatedFile() async throws {
    let directory = try TemporaryDirectory()
    try await Self.seeded(directory, count: 40, size: 60_000)
    let path = directory.path + "/cache.data"
    #expect(truncate(path, off_t(4096 + 2 * DiskFixture.regionSize + 1000)) == 0)
    let store = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path))
    var found = 0
    for i in 0..<40 {
      if let object = try await T.read(store, T.key("k\(i)")) {
        found += 1
        #expect(object.body == T.body(size: 60_000, seed: UInt8(i)))
      }
    }
    #expect(found > 0 && found < 40)
    try await T.write(store, T.key("new"), T.body(size: 60_000, seed: 77))
    #expect(try await T.read(store, T.key("new"))?.body == T.body(size: 60_000, seed: 77))
    try await store.close()
  }

  @Test("a cache file overwritten with garbage opens empty or partial, never wrong")
  func garbageFile() async throws {
    let directory = try TemporaryDirectory()
    try await Self.seeded(directory, count: 40, size: 60_000)
    var random = SystemRandomNumberGenerator()
    // Garbage over the middle regions, then over the whole file header.
    let garbage = (0..<(3 * DiskFixture.regionSize)).map { _ in UInt8.random(in: 0...255, using: &random) }
    try Self.scribble(directory.path, at: 4096 + DiskFixture.regionSize + 777, bytes: garbage)
    let partial = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path))
    var found = 0
    for i in 0..<40 {
      if let object = try await T.read(partial, T.key("k\(i)")) {
        found += 1
        #expect(object.body == T.body(size: 60_000, seed: UInt8(i)))
      }
    }
    #expect(found > 0 && found < 40)
    try await partial.close()
    try Self.scribble(directory.path, at: 0, bytes: Array(garbage[0..<8192]))
    let empty = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path))
    #expect(empty.objectCount == 0)
    try await T.write(empty, T.key("fresh"), T.body(size: 5000, seed: 1))
    #expect(try await T.read(empty, T.key("fresh"))?.body == T.body(size: 5000, seed: 1))
    try await empty.close()
  }

  @Test("a folder that cannot be created or written is an io error naming the path")
  func noPermission() async throws {
    let directory = try TemporaryDirectory()
    // Root ignores permission bits, so use a path through a regular file (ENOTDIR) too.
    let file = directory.path + "/plain-file"
    #expect(FileManager.default.createFile(atPath: file, contents: Data([1])))
    let locked = directory.path + "/locked"
    try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false)
    #expect(chmod(locked, 0) == 0)
    defer { chmod(locked, 0o755) }
    var paths = [file + "/cache"]
    if geteuid() != 0 { paths.append(locked + "/cache") }
    for path in paths {
      do {
        _ = try await DiskStore.open(configuration: DiskFixture.configuration(path: path))
        Issue.record("opening under \(path) must fail")
      } catch {
        guard case .io(_, _, let failing, let code) = error else {
          Issue.record("expected an io error, got \(error)")
          continue
        }
        #expect(path.hasPrefix(failing) || failing.hasPrefix(path), "the error names \(failing)")
        #expect(code != nil)
      }
    }
    do {
      _ = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path, size: 10))
      Issue.record("an invalid size must be refused")
    } catch {
      #expect(error.description.contains("disk.size"))
    }
  }

  @Test(
    "a full disk (ENOSPC) and failing fsync: unhealthy, earlier objects still exact, recovers",
    arguments: [false, true])
  func diskFull(direct: Bool) async throws {
    let directory = try TemporaryDirectory()
    try DirectWrites.skipUnlessAvailable(direct, in: directory.path)
    let io = try FaultyDiskIO(path: directory.path + "/cache.data", direct: direct)
    let store = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path), io: io)
    for i in 0..<10 { try await T.write(store, T.key("before-\(i)"), T.body(size: 100_000, seed: UInt8(i))) }
    try await store.flush()
    #expect(store.isHealthy)
    io.set { $0.writeErrno = ENOSPC }
    for i in 0..<30 {
      do {
        try await T.write(store, T.key("during-\(i)"), T.body(size: 100_000, seed: UInt8(100 + i)))
      } catch is CacheError {}
    }
    await #expect(throws: CacheError.self) { try await store.flush() }
    #expect(!store.isHealthy)
    #expect(store.statistics.ioErrors > 0)
    #expect(store.statistics.lastError?.contains("errno \(ENOSPC)") == true)
    #expect(await store.health().first?.reasons.first?.contains("the last disk write failed") == true)
    #expect(await store.overallStatus() == .degraded)
    for i in 0..<30 {
      if let object = try await T.read(store, T.key("during-\(i)")) {
        #expect(object.body == T.body(size: 100_000, seed: UInt8(100 + i)), "never wrong bytes")
      }
    }
    for i in 0..<10 {
      if let object = try await T.read(store, T.key("before-\(i)")) {
        #expect(object.body == T.body(size: 100_000, seed: UInt8(i)))
      }
    }
    io.set { $0.writeErrno = nil }
    io.set { $0.syncErrno = EIO }
    await #expect(throws: CacheError.self) { try await store.flush() }
    #expect(!store.isHealthy)
    io.set { $0.syncErrno = nil }
    try await T.write(store, T.key("after"), T.body(size: 10_000, seed: 5))
    try await store.flush()
    #expect(store.isHealthy)
    #expect(await store.overallStatus() == .ok)
    #expect(try await T.read(store, T.key("after"))?.body == T.body(size: 10_000, seed: 5))
    let wentDirect = io.directBlockSize != nil
    #expect(wentDirect == direct, "region writes went \(DirectWrites.path(wentDirect))")
    try await store.close()
  }

  @Test("failing and short reads are errors or misses, never wrong bytes")
  func failingReads() async throws {
    let directory = try TemporaryDirectory()
    try await Self.seeded(directory, count: 10, size: 100_000)
    let io = try FaultyDiskIO(path: directory.path + "/cache.data")
    let store = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path), io: io)
    io.set { $0.readErrno = EIO }
    do {
      _ = try await store.lookup(T.key("k1"))
      Issue.record("a failing read must be an error")
    } catch {
      if case .io(_, _, _, let code) = error {
        #expect(code == EIO)
      } else {
        Issue.record("expected an io error, got \(error)")
      }
    }
    #expect(!store.isHealthy)
    io.set { $0.readErrno = nil }
    #expect(try await T.read(store, T.key("k1"))?.body == T.body(size: 100_000, seed: 1))
    io.set { $0.shortReadLimit = 1000 }
    for i in 2..<10 {
      do {
        if let object = try await T.read(store, T.key("k\(i)")) {
          #expect(object.body == T.body(size: 100_000, seed: UInt8(i)), "never wrong bytes")
        }
      } catch is CacheError {}
    }
    io.set { $0.shortReadLimit = nil }
    #expect(try await T.read(store, T.key("k0"))?.body == T.body(size: 100_000, seed: 0))
    try await store.close()
  }
}
