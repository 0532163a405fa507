import Foundation
import NIOCore
import StorageConformance
import TestSupport
import Testing

@testable import EdgeCDNStore

#if canImport(Glibc)
  import Glibc
#endif

/// The on-disk format: its version is checked before anything is read, its records
/// are compact, and what leaves the tier is reported with the weight it was charged.
@Suite("DiskStore format version, record overhead and removal weights")
struct DiskFormatTests {
  typealias T = DiskTestSupport

  @Test("a cache file of another format version opens empty, says so, and is then usable")
  func oldFormatRejected() async throws {
    let directory = try TemporaryDirectory()
    let configuration = DiskFixture.configuration(path: directory.path)
    let store = try await DiskStore.open(configuration: configuration)
    for i in 0..<5 { try await T.write(store, T.key("old-\(i)"), T.body(size: 3000, seed: UInt8(i))) }
    try await store.close()
    // Rewrite the file header as format version 1 wrote it (same fields, its own CRC):
    // the records behind it must never be read with this version's layout.
    let path = directory.path + "/" + DiskStore.fileName
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let old = data.prefix(RecordFormat.fileHeaderSize).withUnsafeBytes { RecordFormat.FileHeader($0) }
    let header = try #require(old)
    let oldBytes = RecordFormat.FileHeader.encoded(
      regionSize: header.regionSize, regionCount: header.regionCount, nonce: header.nonce, version: 1)
    let handle = try #require(FileHandle(forWritingAtPath: path))
    try handle.write(contentsOf: Data(oldBytes))
    try handle.close()

    let reopened = try await DiskStore.open(configuration: configuration)
    #expect(reopened.recoveryReport.rejectedFormatVersion == 1)
    #expect(reopened.recoveryReport.objectsIndexed == 0)
    #expect(!reopened.recoveryReport.fromSnapshot, "a snapshot of the old file must not be trusted")
    #expect(reopened.objectCount == 0)
    for i in 0..<5 { #expect(try await T.read(reopened, T.key("old-\(i)")) == nil) }
    try await T.write(reopened, T.key("new"), T.body(size: 3000, seed: 40))
    try await reopened.close()

    let third = try await DiskStore.open(configuration: configuration)
    #expect(third.recoveryReport.rejectedFormatVersion == nil)
    #expect(try await T.read(third, T.key("new"))?.body == T.body(size: 3000, seed: 40))
    #expect(third.objectCount == 1)
    try await third.close()
  }

  @Test("a 1 KiB object with a small meta takes at most 1.15 times its body in the log")
  func smallObjectOverhead() async throws {
    let directory = try TemporaryDirectory()
    let store = try await DiskStore.open(configuration: DiskFixture.configuration(path: directory.path))
    let meta = CacheMeta(
      freshUntil: CacheTime.now().adding(seconds: 60), created: CacheTime.now(), staleWhileRevalidateSeconds: 0,
      staleIfErrorSeconds: 0,
      response: .init(status: 200, reason: "OK", fields: [.init("content-type", "application/octet-stream")]),
      extensions: [])
    let before = store.statistics.filledBytes
    let count = 100
    for i in 0..<count {
      let handler = try await store.missHandler(for: T.key("kib-\(i)"), meta: meta)
      try await handler.writeBody(ByteBuffer(bytes: T.body(size: 1024, seed: UInt8(i))), eof: true)
      _ = try await handler.finish()
    }
    let perObject = Double(store.statistics.filledBytes - before) / Double(count)
    #expect(perObject <= 1.15 * 1024, "\(perObject) bytes per 1 KiB object")
    for i in [0, 57, 99] {
      #expect(try await T.read(store, T.key("kib-\(i)"))?.body == T.body(size: 1024, seed: UInt8(i)))
    }
    try await store.close()
  }

  @Test("purges report the weight the object was charged; a purge of an absent key reports nothing")
  func purgeWeight() async throws {
    let directory = try TemporaryDirectory()
    let recorder = RemovalRecorder()
    let store = try await DiskStore.open(
      configuration: DiskFixture.configuration(path: directory.path), observer: recorder)
    let key = T.key("weighed")
    let handler = try await store.missHandler(for: key, meta: T.meta("v1"))
    try await handler.writeBody(ByteBuffer(bytes: T.body(size: 150_000, seed: 3)), eof: true)
    let finish = try await handler.finish()
    try await T.write(store, T.key("small"), T.body(size: 10, seed: 4))
    #expect(try await store.purge(key.compact, reason: .invalidation))
    #expect(try await store.purge(T.key("small").compact, reason: .eviction))
    #expect(try await !store.purge(T.key("never-written").compact, reason: .invalidation))
    let removals = recorder.all
    #expect(removals.count == 2)
    #expect(removals.first { $0.key == key.compact }?.weight == finish.size)
    #expect(removals.first { $0.key == key.compact }?.reason == .invalidation)
    let small = removals.first { $0.key == T.key("small").compact }
    #expect(small?.reason == .evictionPurge)
    #expect(small.map { $0.weight > 10 } == true, "meta and body: \(String(describing: small?.weight))")
    try await store.close()
  }

  @Test("reclaim reports every object's weight, also of objects whose fragments span regions")
  func reclaimWeights() async throws {
    let directory = try TemporaryDirectory()
    let recorder = RemovalRecorder()
    let store = try await DiskStore.open(
      configuration: DiskFixture.configuration(path: directory.path), observer: recorder)
    let size = 300_000
    for i in 0..<40 { try await T.write(store, T.key("span-\(i)"), T.body(size: size, seed: UInt8(i))) }
    let removals = recorder.all.filter { $0.reason == .capacity }
    #expect(!removals.isEmpty)
    #expect(store.statistics.objectsReclaimed == removals.count)
    // Meta is a few dozen bytes: the weight is the body plus that, never 0.
    let wrong = removals.filter { $0.weight <= size || $0.weight > size + 1000 }
    #expect(wrong.isEmpty, "weights reported: \(wrong.map(\.weight))")
    try await store.close()
  }

  @Test("direct writes: a flush whose end marker crosses a 4 KiB block boundary keeps every record")
  func directTailAcrossBlocks() async throws {
    let directory = try TemporaryDirectory()
    try DirectWrites.skipUnlessAvailable(true, in: directory.path)
    var configuration = DiskFixture.configuration(path: directory.path)
    configuration.flushIntervalMilliseconds = 60_000
    // Regions full of 0xFF, so zeros where the end marker belongs were written by the store.
    try await DiskStore.open(configuration: configuration).close()
    let path = directory.path + "/" + DiskStore.fileName
    let handle = try #require(FileHandle(forWritingAtPath: path))
    try handle.seek(toOffset: UInt64(RecordFormat.fileHeaderSize))
    try handle.write(contentsOf: Data(repeating: 0xFF, count: DiskFixture.size - RecordFormat.fileHeaderSize))
    try handle.close()
    let store = try await DiskStore.open(configuration: configuration)
    #expect(store.writesDirect, "region writes go \(DirectWrites.path(store.writesDirect))")
    // Region header (32) + one 48-byte record + 125 empty tombstones (32 each) = 4080:
    // the end marker then spans bytes 4080..<4112, across the first block's end.
    guard
      case .appended(let first) = store.writer.tryAppend(
        kind: .fragment, hash: CacheHash(high: 1, low: 1), payload: ByteBuffer(repeating: 7, count: 16))
    else {
      Issue.record("first append failed")
      return
    }
    let regionStart = first.offset - RecordFormat.regionHeaderSize
    for i in 0..<125 {
      let outcome = store.writer.tryAppend(
        kind: .tombstone, hash: CacheHash(high: 2, low: UInt64(i)), payload: ByteBuffer())
      guard case .appended = outcome else {
        Issue.record("tombstone \(i) not appended")
        return
      }
    }
    try await store.flush()
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    #expect(data[(regionStart + 4080)..<(regionStart + 4112)].allSatisfy { $0 == 0 }, "end marker")
    #expect(data[(regionStart + 80)..<(regionStart + 112)].contains { $0 != 0 }, "a tombstone's header")
    #expect(store.writesDirect, "the flush went \(DirectWrites.path(store.writesDirect))")
    // More records after that flush, then objects, then a crash (a copy of the file).
    for i in 0..<6 { try await T.write(store, T.key("after-\(i)"), T.body(size: 9000 + i * 1000, seed: UInt8(i))) }
    try await store.flush()
    let copy = try TemporaryDirectory()
    try FileManager.default.copyItem(atPath: path, toPath: copy.path + "/" + DiskStore.fileName)
    let reopened = try await DiskStore.open(configuration: DiskFixture.configuration(path: copy.path))
    #expect(reopened.recoveryReport.corruptRecords == 0)
    for i in 0..<6 {
      #expect(try await T.read(reopened, T.key("after-\(i)"))?.body == T.body(size: 9000 + i * 1000, seed: UInt8(i)))
    }
    try await reopened.close()
    try await store.close()
  }

  @Test(
    "flushes racing appends and region seals never put an end marker over written records",
    arguments: [false, true])
  func endMarkersNeverClobberRecords(direct: Bool) async throws {
    let directory = try TemporaryDirectory()
    try DirectWrites.skipUnlessAvailable(direct, in: directory.path)
    let copy = try TemporaryDirectory()
    let io = try FaultyDiskIO(path: directory.path + "/cache.data", direct: direct)
    // Slow end markers: a marker written by a flush would land after the sealed region's
    // write issued later, on its records, if the store did not order them.
    io.set { $0.endMarkerDelayMicroseconds = 5_000 }
    var configuration = DiskFixture.configuration(path: directory.path)
    configuration.flushIntervalMilliseconds = 60_000
    let store = try await DiskStore.open(configuration: configuration, io: io)
    let count = 60
    let began = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
      for i in 0..<count {
        try await T.write(store, T.key("raced-\(i)"), T.body(size: 20_000 + i * 7, seed: UInt8(i)))
        // A flush in flight while the next objects are appended and regions sealed.
        group.addTask { try await store.flush() }
      }
      try await group.waitForAll()
    }
    try await store.flush()
    #expect(ContinuousClock.now - began < .seconds(120))
    let wentDirect = io.directBlockSize != nil
    #expect(wentDirect == direct, "region writes went \(DirectWrites.path(wentDirect))")
    // The file as a kill -9 now would leave it (no close, no snapshot): a full replay.
    try FileManager.default.copyItem(atPath: directory.path + "/cache.data", toPath: copy.path + "/cache.data")
    let reopened = try await DiskStore.open(configuration: DiskFixture.configuration(path: copy.path))
    #expect(reopened.recoveryReport.corruptRecords == 0)
    var missing: [Int] = []
    for i in 0..<count {
      let object = try await T.read(reopened, T.key("raced-\(i)"))
      if object == nil { missing.append(i) }
      if let object { #expect(object.body == T.body(size: 20_000 + i * 7, seed: UInt8(i))) }
    }
    #expect(missing.isEmpty, "objects lost after a completed flush: \(missing)")
    try await reopened.close()
    try await store.close()
  }
}
