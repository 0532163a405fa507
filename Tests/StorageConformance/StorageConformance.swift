public import EdgeCDNStore
import NIOCore

/// One behaviour every Storage must show (the checklist in
/// shared/reference/pingora-storage-contract.md), runnable against any fixture.
public struct ConformanceCheck<S: Storage>: Sendable, CustomStringConvertible {
  public let name: String
  let body: @Sendable (ConformanceContext<S>) async throws -> Void

  public var description: String { name }

  /// Builds a fresh store, runs the check, tears the store down (also on failure).
  public func run(with fixture: StorageFixture<S>) async throws {
    let removals = RemovalRecorder()
    let store = try await fixture.makeStorage(removals)
    let context = ConformanceContext(check: name, store: store, fixture: fixture, removals: removals)
    do {
      try await body(context)
    } catch {
      try? await fixture.tearDown(store)
      throw error
    }
    try await fixture.tearDown(store)
  }
}

/// The suite. Each tier's tests run `StorageConformance<Tier>.checks` with its fixture.
public enum StorageConformance<S: Storage> {
  public static var checks: [ConformanceCheck<S>] {
    [
      missThenHit, bodySizes, droppedWriterLeavesNothing, concurrentWritersLastWins, partialReadFollowsWriter,
      partialReaderSeesWriterFailure, streamingWriteTagSelectsWrite, purgeOnceAndReaderContinues,
      updateMetaExistingAndMissing, seekRanges, concurrentMixedOperations, byteBudgetAndRemovalReports,
      errorsNameKeyAndReason,
    ]
  }

  /// 1. A miss, then after finish a hit with byte-exact meta and body, through `lookup`
  /// and through `lookupParts`.
  static var missThenHit: ConformanceCheck<S> {
    ConformanceCheck(name: "01 miss then hit, byte-exact") { c in
      let key = c.key("object")
      try c.expect(try await c.store.lookup(key) == nil, "unknown key must be a miss")
      try c.expect(try await c.store.lookupParts(key) == nil, "unknown key must be a miss for lookupParts")
      let meta = c.meta(tag: "exact")
      let body = ConformanceContext<S>.body(size: 10_000, seed: 1)
      let finish = try await c.write(key, body: body, meta: meta, chunkSize: 1000)
      try c.expect(finish.size >= body.count, "finish size \(finish.size) must count the body (\(body.count))")
      guard let object = try await c.readObject(key) else { throw c.fail("finished object must hit") }
      try c.expect(object.meta == meta, "meta must round-trip exactly")
      try c.expect(object.body == body, "body must round-trip exactly")
      guard var parts = try await c.store.lookupParts(key) else { throw c.fail("finished object must hit lookupParts") }
      let partsBody = try await c.readAll(&parts.handler)
      try await parts.handler.finish()
      try c.expect(parts.meta == meta, "lookupParts must hand over the stored meta exactly")
      try c.expect(partsBody == body, "lookupParts' handler must read the stored body exactly")
    }
  }

  /// 2. Bodies of 0, 1, odd and multi-MiB sizes, in many chunk sizes.
  static var bodySizes: ConformanceCheck<S> {
    ConformanceCheck(name: "02 body sizes 0 B to multi-MiB") { c in
      let cases: [(size: Int, chunk: Int)] = [
        (0, 1), (1, 1), (7, 3), (4097, 4096), (65_537, 1000), (3 << 20, 64 << 10),
      ]
      for (index, item) in cases.enumerated() {
        let key = c.key("size-\(item.size)")
        let body = ConformanceContext<S>.body(size: item.size, seed: UInt8(index))
        try await c.write(key, body: body, chunkSize: item.chunk)
        guard let object = try await c.readObject(key) else { throw c.fail("size \(item.size) must hit") }
        try c.expect(object.body.count == item.size, "size \(item.size): read \(object.body.count) bytes")
        try c.expect(object.body == body, "size \(item.size): bytes differ")
      }
    }
  }

  /// 3. A miss handler dropped or aborted before finish leaves no entry.
  static var droppedWriterLeavesNothing: ConformanceCheck<S> {
    ConformanceCheck(name: "03 dropped or aborted writer leaves nothing") { c in
      let dropped = c.key("dropped")
      do {
        let handler = try await c.store.missHandler(for: dropped, meta: c.meta())
        try await c.writeChunks(handler, body: [1, 2, 3], chunkSize: 2, eof: false)
      }
      try c.expect(try await c.store.lookup(dropped) == nil, "a dropped write must not be visible")

      let aborted = c.key("aborted")
      let handler = try await c.store.missHandler(for: aborted, meta: c.meta())
      try await c.writeChunks(handler, body: [1, 2, 3], chunkSize: 3, eof: true)
      await handler.abort(reason: "test")
      try c.expect(try await c.store.lookup(aborted) == nil, "an aborted write must not be visible")

      // A dropped rewrite must not disturb the object already stored.
      let kept = c.key("kept")
      let original = ConformanceContext<S>.body(size: 100, seed: 9)
      try await c.write(kept, body: original)
      do {
        let rewrite = try await c.store.missHandler(for: kept, meta: c.meta(tag: "v2"))
        try await c.writeChunks(rewrite, body: [9, 9], chunkSize: 1, eof: false)
        await rewrite.abort(reason: "test")
      }
      try c.expect(try await c.readObject(kept)?.body == original, "an aborted rewrite must leave the old object")
    }
  }

  /// 4. Two concurrent writers: the last to finish wins; readers never see a mix.
  static var concurrentWritersLastWins: ConformanceCheck<S> {
    ConformanceCheck(name: "04 concurrent writers, last finish wins") { c in
      let key = c.key("contended")
      let bodyA = ConformanceContext<S>.body(size: 50_000, seed: 0xA)
      let bodyB = ConformanceContext<S>.body(size: 60_000, seed: 0xB)
      let a = try await c.store.missHandler(for: key, meta: c.meta(tag: "a"))
      let b = try await c.store.missHandler(for: key, meta: c.meta(tag: "b"))
      // Readers that look up mid-write follow one write to its eof (partial writes) or see
      // nothing yet; they run beside the writers, which they would otherwise wait for.
      var readers: [Task<(meta: CacheMeta, body: [UInt8])?, any Error>] = []
      for start in stride(from: 0, to: 60_000, by: 10_000) {
        if start < bodyA.count {
          let end = min(start + 10_000, bodyA.count)
          try await a.writeBody(ByteBuffer(bytes: bodyA[start..<end]), eof: end == bodyA.count)
        }
        let end = min(start + 10_000, bodyB.count)
        try await b.writeBody(ByteBuffer(bytes: bodyB[start..<end]), eof: end == bodyB.count)
        readers.append(Task { try await c.readObject(key) })
      }
      _ = try await a.finish()
      let afterA = try await c.readObject(key)
      try c.expect(afterA?.body == bodyA || afterA?.body == bodyB, "after the first finish: one whole body")
      _ = try await b.finish()
      for reader in readers {
        if let seen = try await reader.value {
          try c.expect(seen.body == bodyA || seen.body == bodyB, "a reader saw a mix of two writes or a cut body")
        }
      }
      let final = try await c.readObject(key)
      try c.expect(final?.body == bodyB, "the last writer to finish must win")
      try c.expect(final?.meta.extensions == Array("b".utf8), "the winner's meta must come with its body")
    }
  }

  /// 5a. A reader started mid-write reads the whole body as it arrives and ends at eof.
  static var partialReadFollowsWriter: ConformanceCheck<S> {
    ConformanceCheck(name: "05 partial reader follows the writer to eof") { c in
      guard c.store.supportsStreamingPartialWrite else { return }
      let key = c.key("streaming")
      let body = ConformanceContext<S>.body(size: 200_000, seed: 5)
      let writer = try await c.store.missHandler(for: key, meta: c.meta())
      try await writer.writeBody(ByteBuffer(bytes: body[0..<1000]), eof: false)
      guard let hit = try await c.store.lookup(key) else { throw c.fail("a write in progress must be visible") }
      let reader = Task {
        var handler = hit.handler
        return try await c.readAll(&handler)
      }
      var offset = 1000
      while offset < body.count {
        let end = min(offset + 7000, body.count)
        try await Task.sleep(for: .milliseconds(1))
        try await writer.writeBody(ByteBuffer(bytes: body[offset..<end]), eof: end == body.count)
        offset = end
      }
      _ = try await writer.finish()
      let read = try await reader.value
      try c.expect(read == body, "partial reader read \(read.count) bytes, expected the \(body.count) written")
    }
  }

  /// 5b. If the writer fails, a partial reader gets an error, not a short body.
  static var partialReaderSeesWriterFailure: ConformanceCheck<S> {
    ConformanceCheck(name: "05b partial reader gets an error when the writer fails") { c in
      guard c.store.supportsStreamingPartialWrite else { return }
      for dropInsteadOfAbort in [false, true] {
        let key = c.key("failing-\(dropInsteadOfAbort)")
        var writer: S.Miss? = try await c.store.missHandler(for: key, meta: c.meta())
        try await writer?.writeBody(ByteBuffer(bytes: [1, 2, 3, 4]), eof: false)
        guard let hit = try await c.store.lookup(key) else { throw c.fail("a write in progress must be visible") }
        let reader = Task {
          var handler = hit.handler
          return try await c.readAll(&handler)
        }
        try await Task.sleep(for: .milliseconds(5))
        if dropInsteadOfAbort { writer = nil } else { await writer?.abort(reason: "origin hung up") }
        _ = writer
        do {
          let read = try await reader.value
          throw c.fail("reader of a failed write returned \(read.count) bytes as if complete")
        } catch let error as CacheError {
          try c.expect(error.key == key.combinedHash, "the error must name the key, got \(error)")
        }
      }
    }
  }

  /// 6. lookupStreamingWrite with a tag returns only that write's object.
  static var streamingWriteTagSelectsWrite: ConformanceCheck<S> {
    ConformanceCheck(name: "06 streaming write tag selects its write") { c in
      let key = c.key("tagged")
      let a = try await c.store.missHandler(for: key, meta: c.meta(tag: "a"))
      let b = try await c.store.missHandler(for: key, meta: c.meta(tag: "b"))
      guard let tagA = a.streamingWriteTag, let tagB = b.streamingWriteTag else {
        try c.expect(!c.store.supportsStreamingPartialWrite, "a store with partial writes must tag writes")
        return
      }
      try c.expect(tagA != tagB, "two writes must have different tags")
      let bodyA = ConformanceContext<S>.body(size: 3000, seed: 0xA)
      let bodyB = ConformanceContext<S>.body(size: 3000, seed: 0xB)
      try await c.writeChunks(a, body: bodyA, chunkSize: 1000, eof: true)
      try await c.writeChunks(b, body: bodyB, chunkSize: 1000, eof: true)
      for (tag, expected, label) in [(tagA, bodyA, "a"), (tagB, bodyB, "b")] {
        guard var hit = try await c.store.lookupStreamingWrite(key, tag: tag) else {
          throw c.fail("tag of write \(label) must find it")
        }
        try c.expect(try await c.readAll(&hit.handler) == expected, "tag of write \(label) returned another body")
        try c.expect(hit.meta.extensions == Array(label.utf8), "tag of write \(label) returned another meta")
      }
      let unknown = StreamingWriteTag(rawValue: tagA.rawValue &+ tagB.rawValue &+ 1_000_003)
      try c.expect(try await c.store.lookupStreamingWrite(key, tag: unknown) == nil, "an unknown tag finds nothing")
      _ = try await a.finish()
      _ = try await b.finish()
      guard var hit = try await c.store.lookupStreamingWrite(key, tag: tagB) else {
        throw c.fail("after finish, the tag still finds its own committed write")
      }
      try c.expect(try await c.readAll(&hit.handler) == bodyB, "tag b after finish returned another body")
      try c.expect(try await c.store.lookupStreamingWrite(key, tag: tagA) == nil, "tag a was replaced by b")
    }
  }

  /// 7. purge is true once, then false; a reader that started before reads to the end.
  static var purgeOnceAndReaderContinues: ConformanceCheck<S> {
    ConformanceCheck(name: "07 purge once, reader continues") { c in
      let key = c.key("purged")
      let body = ConformanceContext<S>.body(size: 300_000, seed: 7)
      try await c.write(key, body: body, chunkSize: 16_384)
      guard var hit = try await c.store.lookup(key) else { throw c.fail("must hit before purge") }
      var read = [UInt8]()
      if let first = try await hit.handler.readBody() { read.append(contentsOf: first.readableBytesView) }
      try c.expect(try await c.store.purge(key.compact, reason: .invalidation), "first purge must remove")
      try c.expect(!(try await c.store.purge(key.compact, reason: .invalidation)), "second purge must find nothing")
      try c.expect(try await c.store.lookup(key) == nil, "purged key must miss")
      read += try await c.readAll(&hit.handler)
      try c.expect(read == body, "a reader started before the purge must read the whole body")
      try c.expect(
        !(try await c.store.purge(c.key("never-written").compact, reason: .eviction)), "purge of unknown key is false")
      // Purge finds the object from the compact key alone, variance included.
      let varied = c.key("varied").withVariance(CacheHash.blake2b128(Array("accept-encoding=gzip".utf8)))
      try await c.write(varied, body: [1, 2, 3])
      let compact = CompactCacheKey(primary: varied.primaryHash, variance: varied.variance)
      try c.expect(try await c.store.purge(compact, reason: .invalidation), "purge by compact key with variance")
    }
  }

  /// 8. updateMeta changes meta and not the body; false for a missing key.
  static var updateMetaExistingAndMissing: ConformanceCheck<S> {
    ConformanceCheck(name: "08 updateMeta existing and missing") { c in
      let key = c.key("meta")
      let body = ConformanceContext<S>.body(size: 5000, seed: 8)
      try await c.write(key, body: body, meta: c.meta(tag: "old"))
      var newMeta = c.meta(status: 200, tag: "revalidated-with-a-longer-tag")
      newMeta.response.fields.append(.init("x-revalidated", "yes"))
      try c.expect(try await c.store.updateMeta(key, meta: newMeta), "updateMeta of a stored key is true")
      guard let object = try await c.readObject(key) else { throw c.fail("must still hit after updateMeta") }
      try c.expect(object.meta == newMeta, "later lookups see the new meta")
      try c.expect(object.body == body, "updateMeta must not change the body")
      try c.expect(
        !(try await c.store.updateMeta(c.key("missing"), meta: newMeta)), "updateMeta of a missing key is false")
    }
  }

  /// 9. seek: exact ranges, end clamped, start out of range is an error, seeks again.
  static var seekRanges: ConformanceCheck<S> {
    ConformanceCheck(name: "09 seek ranges") { c in
      let key = c.key("ranges")
      let body = ConformanceContext<S>.body(size: 100_000, seed: 9)
      try await c.write(key, body: body, chunkSize: 3000)
      guard var hit = try await c.store.lookup(key) else { throw c.fail("must hit") }
      guard hit.handler.canSeek else { return }
      for (start, end) in [(0, 1), (2999, 3001), (50_000, 70_000), (99_999, 100_000), (12_345, nil)] as [(Int, Int?)] {
        try await hit.handler.seek(start: start, end: end)
        let read = try await c.readAll(&hit.handler)
        try c.expect(read == Array(body[start..<(end ?? body.count)]), "range \(start)..<\(end ?? body.count) differs")
      }
      try await hit.handler.seek(start: 90_000, end: 1_000_000)
      try c.expect(try await c.readAll(&hit.handler) == Array(body[90_000...]), "end past the body must clamp")
      for start in [100_000, 100_001] {
        do {
          try await hit.handler.seek(start: start, end: nil)
          throw c.fail("seek to \(start) of a 100000-byte body must throw")
        } catch let error as CacheError {
          guard case .invalidRange = error else { throw c.fail("expected invalidRange, got \(error)") }
          try c.expect(error.key == key.combinedHash, "invalidRange must name the key")
        }
      }
      if hit.handler.canSeekMultipart {
        try await hit.handler.seekMultipart(start: 10, end: 20)
        try c.expect(try await c.readAll(&hit.handler) == Array(body[10..<20]), "first part of a multipart range")
        try await hit.handler.seekMultipart(start: 40_000, end: 40_100)
        try c.expect(try await c.readAll(&hit.handler) == Array(body[40_000..<40_100]), "second part")
      }
    }
  }

  /// 10. Many tasks doing lookups, writes, reads and purges of overlapping keys.
  static var concurrentMixedOperations: ConformanceCheck<S> {
    ConformanceCheck(name: "10 concurrent mixed operations") { c in
      let keyCount = 16
      let tasks = 8
      let operationsPerTask = 150
      try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<tasks {
          group.addTask {
            var random = SplitMix64(seed: UInt64(worker) &+ 1)
            for _ in 0..<operationsPerTask {
              let k = Int(random.next() % UInt64(keyCount))
              let key = c.key("shared-\(k)")
              switch random.next() % 10 {
              case 0..<4:
                // A body is named by its seed, stored in the meta's extensions.
                let seed = UInt8(truncatingIfNeeded: random.next())
                let size = Int(random.next() % 40_000)
                try await c.write(
                  key, body: ConformanceContext<S>.body(size: size, seed: seed), meta: c.meta(tag: "\(seed):\(size)"),
                  chunkSize: 1 + Int(random.next() % 9000))
              case 4:
                _ = try await c.store.purge(key.compact, reason: .invalidation)
              default:
                guard let object = try await c.readObject(key) else { continue }
                let tag = String(decoding: object.meta.extensions, as: UTF8.self).split(separator: ":")
                guard tag.count == 2, let seed = UInt8(tag[0]), let size = Int(tag[1]) else {
                  throw c.fail("unexpected meta tag \(tag)")
                }
                let expected = ConformanceContext<S>.body(size: size, seed: seed)
                // A partial read of a write in progress is a prefix until it completes.
                try c.expect(
                  object.body == expected || expected.starts(with: object.body),
                  "read \(object.body.count) bytes that are not the body of its meta (\(size) bytes, seed \(seed))")
              }
            }
          }
        }
        try await group.waitForAll()
      }
      var hits = 0
      for k in 0..<keyCount where try await c.readObject(c.key("shared-\(k)")) != nil { hits += 1 }
      if let count = c.fixture.objectCount {
        try c.expect(count(c.store) == hits, "store counts \(count(c.store)) objects, lookups find \(hits)")
      }
    }
  }

  /// 11. The byte budget is never exceeded; every key that left is reported.
  static var byteBudgetAndRemovalReports: ConformanceCheck<S> {
    ConformanceCheck(name: "11 byte budget and removal reports") { c in
      guard let budget = c.fixture.byteBudget, let used = c.fixture.usedBytes else { return }
      let objectSize = max(1, budget / 20)
      var written: [CacheKey] = []
      for i in 0..<60 {
        let key = c.key("budget-\(i)")
        try await c.write(
          key, body: ConformanceContext<S>.body(size: objectSize, seed: UInt8(i % 256)), chunkSize: 8192)
        written.append(key)
        try c.expect(used(c.store) <= budget, "used \(used(c.store)) bytes exceeds the budget of \(budget)")
      }
      var missing = Set<CacheHash>()
      for key in written where try await c.store.lookup(key) == nil { missing.insert(key.combinedHash) }
      try c.expect(!missing.isEmpty, "writing 3x the budget must evict something")
      let reported = Set(c.removals.all.filter { $0.reason == .capacity }.map(\.key.combinedHash))
      try c.expect(
        reported == missing, "reported removals (\(reported.count)) must be exactly the keys gone (\(missing.count))")
    }
  }

  /// 12. Errors carry a reason and the key; misuse does not trap.
  static var errorsNameKeyAndReason: ConformanceCheck<S> {
    ConformanceCheck(name: "12 errors name the key and the reason") { c in
      let key = c.key("misuse")
      let handler = try await c.store.missHandler(for: key, meta: c.meta())
      try await handler.writeBody(ByteBuffer(bytes: [1]), eof: true)
      _ = try await handler.finish()
      do {
        try await handler.writeBody(ByteBuffer(bytes: [2]), eof: true)
        throw c.fail("writeBody after finish must throw")
      } catch let error as CacheError {
        try c.expect(error.key == key.combinedHash, "the error must name the key: \(error)")
        try c.expect(!error.description.isEmpty, "the error must say what happened")
      }
      do {
        _ = try await handler.finish()
        throw c.fail("finish twice must throw")
      } catch is CacheError {}
      guard var hit = try await c.store.lookup(key) else { throw c.fail("must hit") }
      if hit.handler.canSeek {
        do {
          try await hit.handler.seek(start: -1, end: nil)
          throw c.fail("a negative seek must throw")
        } catch is CacheError {}
      }
    }
  }
}

/// A small seeded generator, so a failing run can be replayed (the store's test suites use
/// it too).
public struct SplitMix64: RandomNumberGenerator, Sendable {
  var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
