import NIOCore
import Synchronization
import TestSupport
import Testing

@testable import EdgeCDNStore

/// A write in progress on disk, read through its tag (`lookupStreamingWrite`): the reader
/// follows it a fragment (64 KiB here) at a time and ends exactly at its end.
@Suite("Readers follow a disk write in progress", .hangGuard())
struct DiskFollowedWriteTests {
  typealias T = DiskTestSupport

  /// A store, a write of `key` begun, and a reader of it collecting what it reads.
  /// Bytes a reader task has read so far.
  final class Received: Sendable {
    let bytes = Mutex<[UInt8]>([])
  }

  struct Following {
    let store: DiskStore
    let folder: TemporaryDirectory
    let miss: DiskMissHandler
    let received = Received()
    let reader: Task<Void, any Error>

    init(seek: (start: Int, end: Int?)? = nil) async throws {
      folder = try TemporaryDirectory()
      store = try await DiskStore.open(configuration: DiskFixture.configuration(path: folder.path))
      miss = try await store.missHandler(for: DiskFollowedWriteTests.key, meta: T.meta("v1"))
      let tag = try #require(miss.streamingWriteTag)
      let hit = try #require(try await store.lookupStreamingWrite(DiskFollowedWriteTests.key, tag: tag))
      #expect(hit.meta.extensions == Array("v1".utf8))
      #expect(try await store.lookup(DiskFollowedWriteTests.key) == nil, "untagged lookups see committed objects only")
      reader = Task { [received] in
        var handler = hit.handler
        if let seek { try await handler.seek(start: seek.start, end: seek.end) }
        while let chunk = try await handler.readBody() { received.bytes.withLock { $0 += chunk.readableBytesView } }
        try await handler.finish()
      }
    }

    var count: Int { received.bytes.withLock { $0.count } }

    func write(_ body: [UInt8], _ range: Range<Int>, eof: Bool) async throws {
      var offset = range.lowerBound
      while offset < range.upperBound {
        let end = min(offset + 10_000, range.upperBound)
        try await miss.writeBody(ByteBuffer(bytes: body[offset..<end]), eof: eof && end == range.upperBound)
        offset = end
      }
    }

    func close() async throws {
      reader.cancel()
      try await store.close()
    }
  }

  static let key = CacheKey(primary: "followed")

  /// 300,000 bytes end with a 37,856-byte tail, written as a last fragment at finish;
  /// 270,000 with a 7,856-byte one, which the head holds and readers get at the end of
  /// the body, before the commit.
  @Test("a reader has each fragment as it is appended, and the whole body at the end", arguments: [300_000, 270_000])
  func followsFragmentByFragment(size: Int) async throws {
    let f = try await Following()
    let body = T.body(size: size, seed: 3)
    try await f.write(body, 0..<200_000, eof: false)
    // Three whole fragments are on disk; the rest of the 200,000 bytes waits for a fourth.
    #expect(try await Self.eventually { f.count == 196_608 }, "read \(f.count) of the 196,608 bytes in fragments")
    try await Task.sleep(for: .milliseconds(50))
    #expect(f.count == 196_608, "read past the fragments: \(f.count)")
    try await f.write(body, 200_000..<size, eof: true)
    if size == 270_000 {
      #expect(try await Self.eventually { f.count == size }, "the short tail comes with the body's end")
    }
    _ = try await f.miss.finish()
    try await f.reader.value
    let same = f.received.bytes.withLock { $0 == body }
    #expect(same, "read \(f.count) bytes, not the \(size) written")
    // Committed: the tag now finds the stored object.
    let tag = try #require(f.miss.streamingWriteTag)
    #expect(try await f.store.lookupStreamingWrite(Self.key, tag: tag) != nil)
    try await f.close()
  }

  @Test("a range of a write in progress is read exactly, before the write ends")
  func rangeOfAWriteInProgress() async throws {
    let f = try await Following(seek: (100_000, 150_000))
    let body = T.body(size: 400_000, seed: 4)
    try await f.write(body, 0..<200_000, eof: false)
    try await f.reader.value
    let same = f.received.bytes.withLock { $0 == Array(body[100_000..<150_000]) }
    #expect(same, "read \(f.count) bytes, not bytes 100,000..<150,000")
    try await f.write(body, 200_000..<400_000, eof: true)
    _ = try await f.miss.finish()
    try await f.close()
  }

  @Test("a range past the end of a write in progress fails once the end is known")
  func rangePastTheEnd() async throws {
    let f = try await Following(seek: (500_000, nil))
    let body = T.body(size: 300_000, seed: 5)
    try await f.write(body, 0..<300_000, eof: true)
    await #expect(throws: CacheError.self) { try await f.reader.value }
    _ = try await f.miss.finish()
    try await f.close()
  }

  @Test("an aborted write fails its reader where bytes are missing, and leaves nothing to find")
  func abortFailsTheReader() async throws {
    let f = try await Following()
    let body = T.body(size: 300_000, seed: 6)
    try await f.write(body, 0..<150_000, eof: false)
    #expect(try await Self.eventually { f.count == 131_072 })
    await f.miss.abort(reason: "the origin hung up")
    do {
      try await f.reader.value
      Issue.record("the reader of an aborted write ended as if the body were whole")
    } catch let error as CacheError {
      #expect(error.key == Self.key.combinedHash)
    }
    let tag = try #require(f.miss.streamingWriteTag)
    #expect(try await f.store.lookupStreamingWrite(Self.key, tag: tag) == nil)
    #expect(f.store.writes.openCount == 0)
    try await f.close()
  }

  @Test("a write dropped unfinished fails its reader")
  func droppedWriteFailsTheReader() async throws {
    let folder = try TemporaryDirectory()
    let store = try await DiskStore.open(configuration: DiskFixture.configuration(path: folder.path))
    var miss: DiskMissHandler? = try await store.missHandler(for: Self.key, meta: T.meta("v1"))
    let tag = try #require(miss?.streamingWriteTag)
    var hit = try #require(try await store.lookupStreamingWrite(Self.key, tag: tag))
    try await miss?.writeBody(ByteBuffer(bytes: T.body(size: 100_000, seed: 7)), eof: false)
    #expect(try await hit.handler.readBody()?.readableBytes == 65_536)
    miss = nil
    await #expect(throws: CacheError.self) { _ = try await hit.handler.readBody() }
    #expect(store.writes.openCount == 0)
    try await store.close()
  }

  /// Polls `condition` every 5 ms for up to 10 s.
  static func eventually(_ condition: () -> Bool) async throws -> Bool {
    for _ in 0..<2000 {
      if condition() { return true }
      try await Task.sleep(for: .milliseconds(5))
    }
    return condition()
  }
}
