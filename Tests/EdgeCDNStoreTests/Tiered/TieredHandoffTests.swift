import NIOCore
import Synchronization
import Testing

@testable import EdgeCDNStore

/// Readers of a client write follow RAM's copy; when the write leaves RAM midway (past
/// RAM's maximum object size, or a RAM failure) while disk goes on, they must get the
/// rest from disk, not a cut body.
@Suite("A write that leaves RAM hands its readers to disk", .hangGuard())
struct TieredHandoffTests {
  static let key = CacheKey(primary: "handed-off")

  /// RAM takes objects up to 64 KiB, disk any.
  static func store() async throws -> Tiered {
    Tiered(memory: try TieredFixture.memory(maxObjectSize: 64 << 10), disk: try await TieredFixture.disk())
  }

  /// Writes `body` from `offset` in 16 KiB chunks, yielding between them so readers interleave.
  static func write(_ miss: some MissHandler, _ body: [UInt8], from offset: Int = 0, eof: Bool = true) async throws {
    var offset = offset
    while offset < body.count {
      let end = min(offset + 16_384, body.count)
      try await miss.writeBody(ByteBuffer(bytes: body[offset..<end]), eof: eof && end == body.count)
      offset = end
      await Task.yield()
    }
  }

  @Test("a reader following the write from its start gets every byte, past RAM's limit")
  func readerFromTheStart() async throws {
    let store = try await Self.store()
    let body = TieredFixture.body(size: 300_000, seed: 7)
    let miss = try await store.missHandler(for: Self.key, meta: TieredFixture.meta())
    let (_, reader) = try await Self.follow(miss, in: store)
    try await Self.write(miss, body)
    _ = try await miss.finish()
    let read = try await reader.value
    #expect(read.count == body.count)
    #expect(read == body)
    #expect(try await store.memoryTier.lookup(Self.key) == nil, "the object is too large for RAM")
    #expect(store.core.handoffs.count == 0, "the write ended: its handoff is gone")
    try await TieredFixture.close(store)
  }

  @Test("a reader that asks after the write left RAM follows disk's write and reads it whole")
  func readerAfterRAMLeft() async throws {
    let store = try await Self.store()
    let body = TieredFixture.body(size: 200_000, seed: 8)
    let miss = try await store.missHandler(for: Self.key, meta: TieredFixture.meta())
    let tag = try #require(miss.streamingWriteTag)
    // 96 KiB written: past RAM's 64 KiB, so RAM's write is gone.
    try await Self.write(Array(body[0..<98_304]), into: miss)
    let handoff = try #require(store.core.handoffs.handoff(for: tag))
    let reader = Task {
      guard var hit = try await store.lookupStreamingWrite(Self.key, tag: tag) else { return [UInt8]?.none }
      return try await TieredFixture.readAll(&hit.handler)
    }
    // The rest only once the reader waits for disk's next fragment, having read the first:
    // a reader that asks after the commit finds no write of that tag (the handoff has left
    // the registry), as with RAM alone.
    #expect(try await TieredFixture.eventually { Self.diskWaiters(store, handoff) == 1 })
    #expect(handoff.waitingReaders == 0, "it follows disk's write, not waiting for its commit")
    try await Self.write(miss, body, from: 98_304)
    _ = try await miss.finish()
    #expect(try await reader.value == body)
    #expect(store.core.handoffs.count == 0, "the write ended: its handoff is gone")
    try await TieredFixture.close(store)
  }

  /// Disk's write is followed a fragment (64 KiB here) at a time: the reader has the
  /// fragments disk appended while the write is still open, not only after its commit.
  @Test("a reader past RAM's part gets disk's fragments before the write ends")
  func readerGetsFragmentsBeforeTheEnd() async throws {
    let store = try await Self.store()
    let body = TieredFixture.body(size: 400_000, seed: 14)
    let miss = try await store.missHandler(for: Self.key, meta: TieredFixture.meta())
    let tag = try #require(miss.streamingWriteTag)
    let hit = try #require(try await store.lookupStreamingWrite(Self.key, tag: tag))
    let received = Mutex<[UInt8]>([])
    let reader = Task { [hit] in
      var handler = hit.handler
      while let chunk = try await handler.readBody() { received.withLock { $0 += chunk.readableBytesView } }
      try await handler.finish()
    }
    // 320 KiB written, not ended: disk holds five whole fragments of it.
    try await Self.write(Array(body[0..<327_680]), into: miss)
    #expect(
      try await TieredFixture.eventually { received.withLock { $0.count } == 327_680 },
      "read \(received.withLock { $0.count }) bytes of the 327,680 disk holds in fragments")
    let prefixMatches = received.withLock { $0 == Array(body[0..<327_680]) }
    #expect(prefixMatches, "the fragments read are not the body's first 327,680 bytes")
    try await Self.write(miss, body, from: 327_680)
    _ = try await miss.finish()
    try await reader.value
    let whole = received.withLock { $0 == body }
    #expect(whole, "read \(received.withLock { $0.count }) bytes, not the body's \(body.count)")
    try await TieredFixture.close(store)
  }

  /// A request that does not hold the write's tag (it came during the fill, after the
  /// proxy's lock was released) finds it by key: in RAM while RAM has it, then on disk.
  /// Before, a lookup after the write left RAM missed, and the proxy fetched again.
  @Test("an untagged lookup finds a write in progress, in RAM and after it left RAM")
  func untaggedLookupFollowsTheWrite() async throws {
    let store = try await Self.store()
    let body = TieredFixture.body(size: 300_000, seed: 15)
    let miss = try await store.missHandler(for: Self.key, meta: TieredFixture.meta())
    try await Self.write(Array(body[0..<20_000]), into: miss)
    let inRAM = try #require(try await store.lookup(Self.key), "the write in RAM")
    try await Self.write(miss, Array(body[0..<150_000]), from: 20_000, eof: false)
    #expect(try await store.memoryTier.lookup(Self.key) == nil, "the write left RAM")
    let onDisk = try #require(try await store.lookup(Self.key), "the write on disk, by key")
    let readers = [inRAM, onDisk].map { hit in
      Task {
        var handler = hit.handler
        let read = try await TieredFixture.readAll(&handler)
        try await handler.finish()
        return read
      }
    }
    try await Self.write(miss, body, from: 150_000)
    _ = try await miss.finish()
    for reader in readers {
      let read = try await reader.value
      let whole = read == body
      #expect(whole, "read \(read.count) bytes, not the body's \(body.count)")
    }
    try await TieredFixture.close(store)
  }

  /// A purge hides the write in progress from lookups by key, as RAM alone hides its own;
  /// a reader holding the tag reads on.
  @Test("after a purge, an untagged lookup misses a write in progress that left RAM")
  func purgeHidesTheWriteFromLookups() async throws {
    let store = try await Self.store()
    let body = TieredFixture.body(size: 300_000, seed: 16)
    let miss = try await store.missHandler(for: Self.key, meta: TieredFixture.meta())
    let (_, reader) = try await Self.follow(miss, in: store)
    try await Self.write(Array(body[0..<150_000]), into: miss)
    #expect(try await store.lookup(Self.key) != nil, "found by key before the purge")
    _ = try await store.purge(Self.key.compact, reason: .invalidation)
    #expect(try await store.lookup(Self.key) == nil, "found by key after the purge")
    try await Self.write(miss, body, from: 150_000)
    _ = try await miss.finish()
    let whole = try await reader.value == body
    #expect(whole, "the tagged reader reads on")
    try await TieredFixture.close(store)
  }

  @Test("a range beyond RAM's part is read from disk, exactly")
  func rangeBeyondRAM() async throws {
    let store = try await Self.store()
    let body = TieredFixture.body(size: 300_000, seed: 9)
    let miss = try await store.missHandler(for: Self.key, meta: TieredFixture.meta())
    let tag = try #require(miss.streamingWriteTag)
    let hit = try #require(try await store.lookupStreamingWrite(Self.key, tag: tag))
    let reader = Task { [hit] in
      var handler = hit.handler
      try await handler.seek(start: 200_000, end: 250_000)
      return try await TieredFixture.readAll(&handler)
    }
    try await Self.write(miss, body)
    _ = try await miss.finish()
    #expect(try await reader.value == Array(body[200_000..<250_000]))
    try await TieredFixture.close(store)
  }

  @Test("a RAM write that fails midway hands its readers to disk")
  func ramFailureHandsOver() async throws {
    let store = TieredStore<FailingWritesStore, DiskStore>(
      memory: FailingWritesStore(base: try TieredFixture.memory(), failAfterBytes: 40_000),
      disk: try await TieredFixture.disk())
    let body = TieredFixture.body(size: 150_000, seed: 10)
    let miss = try await store.missHandler(for: Self.key, meta: TieredFixture.meta())
    let (_, reader) = try await Self.follow(miss, in: store)
    try await Self.write(miss, body)
    _ = try await miss.finish()
    #expect(try await reader.value == body)
    await store.shutdown()
    try await store.disk?.close()
  }

  @Test("when the write is aborted after leaving RAM, its reader fails instead of ending early")
  func abortFailsTheReader() async throws {
    let store = try await Self.store()
    let body = TieredFixture.body(size: 200_000, seed: 11)
    let miss = try await store.missHandler(for: Self.key, meta: TieredFixture.meta())
    let (_, reader) = try await Self.follow(miss, in: store)
    try await Self.write(Array(body[0..<100_000]), into: miss)
    await miss.abort(reason: "the origin hung up")
    await #expect(throws: CacheError.self) { _ = try await reader.value }
    #expect(try await store.lookup(Self.key) == nil)
    #expect(store.core.handoffs.count == 0, "the write ended: its handoff is gone")
    try await TieredFixture.close(store)
  }

  @Test("a reader cancelled while it waits for disk returns at once")
  func cancelledReaderReturns() async throws {
    let store = try await Self.store()
    let body = TieredFixture.body(size: 200_000, seed: 12)
    let miss = try await store.missHandler(for: Self.key, meta: TieredFixture.meta())
    let (tag, reader) = try await Self.follow(miss, in: store)
    try await Self.write(Array(body[0..<100_000]), into: miss)
    // The reader is now waiting for disk's next fragment, which does not come until we
    // write on.
    let handoff = try #require(store.core.handoffs.handoff(for: tag))
    #expect(try await TieredFixture.eventually { Self.diskWaiters(store, handoff) == 1 })
    reader.cancel()
    await #expect(throws: CacheError.self) { _ = try await reader.value }
    try await Self.write(miss, body, from: 100_000)
    _ = try await miss.finish()
    #expect(try await TieredFixture.read(store, Self.key) == body)
    try await TieredFixture.close(store)
  }

  @Test("a write dropped without finish or abort fails its following reader and leaves no handoff")
  func droppedWriteFailsTheReader() async throws {
    let store = try await Self.store()
    let body = TieredFixture.body(size: 100_000, seed: 13)
    var miss: Tiered.Miss? = try await store.missHandler(for: Self.key, meta: TieredFixture.meta())
    let tag = try #require(miss?.streamingWriteTag)
    let hit = try #require(try await store.lookupStreamingWrite(Self.key, tag: tag))
    let reader = Task { [hit] in
      var handler = hit.handler
      return try await TieredFixture.readAll(&handler)
    }
    if let writing = miss { try await Self.write(body, into: writing) }
    let handoff = try #require(store.core.handoffs.handoff(for: tag))
    #expect(try await TieredFixture.eventually { Self.diskWaiters(store, handoff) == 1 })
    miss = nil
    await #expect(throws: CacheError.self) { _ = try await reader.value }
    #expect(store.core.handoffs.count == 0)
    try await TieredFixture.close(store)
  }

  /// A reader of `miss`'s write, started before any of it is written: the write's tag and
  /// the task reading the whole body (the handler finished at its end).
  static func follow<S: Storage>(
    _ miss: S.Miss, in store: S
  ) async throws -> (StreamingWriteTag, Task<[UInt8], any Error>) {
    let tag = try #require(miss.streamingWriteTag)
    let hit = try #require(try await store.lookupStreamingWrite(Self.key, tag: tag))
    let reader = Task { [hit] in
      var handler = hit.handler
      let body = try await TieredFixture.readAll(&handler)
      try await handler.finish()
      return body
    }
    return (tag, reader)
  }

  /// Readers waiting for disk's next fragment of the write `handoff` hands over.
  static func diskWaiters(_ store: Tiered, _ handoff: DiskHandoff) -> Int {
    guard let tag = handoff.diskTag,
      case .writing(let progress, _, _) = store.disk?.writes.find(tag, hash: Self.key.combinedHash)
    else { return -1 }
    return progress.waitingReaders
  }

  static func write(_ prefix: [UInt8], into miss: some MissHandler) async throws {
    try await write(miss, prefix, eof: false)
  }
}
