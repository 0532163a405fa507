import NIOCore
import Synchronization
import Testing

@testable import EdgeCDNStore

#if canImport(Glibc)
  import Glibc
#endif

/// Large committed bodies kept in a RAM file (memfd) for sendfile: what readers get, what
/// happens when the file cannot be made, and that descriptors close with the last holder.
@Suite("MemoryStore file-backed bodies", .hangGuard())
struct MemoryFileBodyTests {
  static func meta() -> CacheMeta {
    let now = CacheTime.now()
    return CacheMeta(freshUntil: now.adding(seconds: 60), created: now, response: .init(status: 200))
  }

  /// Bytes that differ from offset to offset, so a misplaced piece shows.
  static func pattern(_ size: Int, seed: UInt32 = 1) -> [UInt8] {
    var state = seed
    return (0..<size).map { _ in
      state = state &* 1_664_525 &+ 1_013_904_223
      return UInt8(truncatingIfNeeded: state >> 24)
    }
  }

  static func store(budget: Int = 16 << 20, threshold: Int = 64 << 10) throws -> MemoryStore {
    try MemoryStore(
      configuration: .init(
        byteBudget: budget, maxObjectSize: min(budget, 4 << 20), shardCount: 4, fileBodyThreshold: threshold))
  }

  /// Writes `bytes` in chunks of 16 KiB, as a fill would.
  static func write(_ store: MemoryStore, _ key: CacheKey, _ bytes: [UInt8]) async throws {
    let handler = try await store.missHandler(for: key, meta: meta())
    var offset = 0
    repeat {
      let end = min(bytes.count, offset + (16 << 10))
      try await handler.writeBody(ByteBuffer(bytes: bytes[offset..<end]), eof: end == bytes.count)
      offset = end
    } while offset < bytes.count
    _ = try await handler.finish()
  }

  static func readAll(
    _ handler: inout MemoryHitHandler, maxChunk: Int = MemoryBody.fileReadBytes
  ) async throws
    -> [UInt8]
  {
    var bytes: [UInt8] = []
    for _ in 0..<10_000 {
      guard let chunk = try await handler.readBody() else { return bytes }
      #expect(chunk.readableBytes <= maxChunk)
      bytes += chunk.readableBytesView
    }
    Issue.record("readBody did not end")
    return bytes
  }

  static func fileBody(_ store: MemoryStore, _ key: CacheKey) -> FileBody? {
    store.immediateLookup(key, maxBodyBytes: .max, readsBody: false) { _, _, _ in true }?.fileBody
  }

  /// The descriptor of `key`'s RAM file and its inode, holding nothing (a debug build keeps
  /// a local alive to the end of its scope, which would keep the file open).
  static func openFile(_ store: MemoryStore, _ key: CacheKey) -> (descriptor: CInt, inode: UInt64)? {
    guard let file = fileBody(store, key), let inode = inode(file.file.descriptor) else { return nil }
    return (file.file.descriptor, inode)
  }

  /// The inode behind `descriptor` now; nil when it is not open.
  static func inode(_ descriptor: CInt) -> UInt64? {
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { return nil }
    return UInt64(status.st_ino)
  }

  /// Whether the RAM file `descriptor` was (inode `inode`) is still open: a descriptor
  /// number reused by another file has another inode.
  static func isOpen(_ descriptor: CInt, inode: UInt64) -> Bool {
    Self.inode(descriptor) == inode
  }

  @Test("a large body is committed to a RAM file; readBody and FileBody.read give its exact bytes")
  func largeBodyIsFileBacked() async throws {
    let store = try Self.store()
    let key = CacheKey(primary: "large")
    let bytes = Self.pattern(300_001)
    try await Self.write(store, key, bytes)
    let hit = try #require(store.immediateLookup(key, maxBodyBytes: .max, readsBody: true) { _, _, _ in true })
    let file = try #require(hit.fileBody)
    #expect(hit.body.isEmpty)
    #expect(hit.bodySize == bytes.count)
    #expect(file.offset == 0 && file.length == bytes.count)
    #expect(Array(try file.read().readableBytesView) == bytes)
    var handler = try #require(try await store.lookup(key)).handler
    var taking = handler
    #expect(taking.takeFileBody()?.length == bytes.count)
    #expect(try await taking.readBody() == nil, "taken: the read is at its end")
    #expect(try await Self.readAll(&handler) == bytes)
    // The page-rounded size is charged, not less than the bytes.
    let footprint = try #require(store.footprint(of: key))
    #expect(footprint.body >= bytes.count && footprint.body < bytes.count + 8192)
    #expect(store.fileBodyFallbacks == 0)
    // Served in place too: the file, no chunks.
    var served: (chunks: Int, file: FileBody?) = (-1, nil)
    #expect(
      store.immediateServe(
        key, maxBodyBytes: .max, readsBody: true, accept: { _, _, _, _ in true },
        serve: { chunks, file in served = (chunks.count, file) }))
    #expect(served.chunks == 0 && served.file?.length == bytes.count)
    #expect(Array(try #require(served.file).read().readableBytesView) == bytes)
  }

  @Test("RAM files stop at their cap (half the open-file limit): the maker refuses, as on EMFILE")
  func ramFilesStopAtTheirCap() throws {
    #expect(MemoryFile.openLimit() >= 256)
    #expect(throws: MemoryFile.Failure.self) { try MemoryFile.make(holding: [ByteBuffer(string: "x")], limit: 0) }
    let file = try MemoryFile.make(holding: [ByteBuffer(string: "xyz")], limit: .max)
    #expect(String(buffer: try file.read(at: 0, length: 3)) == "xyz")
    #expect(MemoryFile.openCount >= 1)
  }

  @Test("a body under the threshold, or with the threshold off, stays in buffers")
  func thresholdAndOff() async throws {
    let store = try Self.store()
    try await Self.write(store, CacheKey(primary: "small"), Self.pattern(60_000))
    #expect(Self.fileBody(store, CacheKey(primary: "small")) == nil)
    let off = try Self.store(threshold: 0)
    try await Self.write(off, CacheKey(primary: "large"), Self.pattern(200_000))
    #expect(Self.fileBody(off, CacheKey(primary: "large")) == nil)
  }

  @Test("seeked ranges of a file-backed body read back exactly, and fileBody names the range")
  func seekRanges() async throws {
    let store = try Self.store()
    let key = CacheKey(primary: "ranges")
    let bytes = Self.pattern(200_000, seed: 7)
    try await Self.write(store, key, bytes)
    let ranges: [(Int, Int?)] = [(0, 1), (65_535, 65_537), (1000, 150_000), (199_999, nil), (123_456, 400_000)]
    for (start, end) in ranges {
      var handler = try #require(try await store.lookup(key)).handler
      try await handler.seek(start: start, end: end)
      let upTo = min(end ?? bytes.count, bytes.count)
      var taking = handler
      let taken = taking.takeFileBody()
      let file = try #require(taken)
      #expect(file.offset == start && file.length == upTo - start)
      #expect(Array(try file.read().readableBytesView) == Array(bytes[start..<upTo]))
      #expect(try await taking.readBody() == nil)
      #expect(try await Self.readAll(&handler) == Array(bytes[start..<upTo]), "range \(start)..<\(upTo)")
    }
    var handler = try #require(try await store.lookup(key)).handler
    await #expect(throws: CacheError.self) { try await handler.seek(start: 200_000, end: nil) }
  }

  @Test("a reader that holds the body before a purge still reads it all; then the file closes")
  func purgeWhileReading() async throws {
    let store = try Self.store()
    let key = CacheKey(primary: "purged")
    let bytes = Self.pattern(256 << 10, seed: 3)
    try await Self.write(store, key, bytes)
    let (descriptor, inode) = try #require(Self.openFile(store, key))
    var handler: MemoryHitHandler? = try #require(try await store.lookup(key)).handler
    let first = try #require(try await handler?.readBody())
    #expect(try await store.purge(key.compact, reason: .invalidation))
    #expect(try await store.lookup(key) == nil)
    var rest = Array(first.readableBytesView)
    for _ in 0..<100 {
      guard let chunk = try await handler?.readBody() else { break }
      rest += chunk.readableBytesView
    }
    #expect(rest == bytes)
    #expect(Self.isOpen(descriptor, inode: inode), "the reader holds it")
    handler = nil
    #expect(!Self.isOpen(descriptor, inode: inode), "closed with its last holder")
    #expect(store.usedBytes == 0)
  }

  @Test("a lease for a write gives the descriptor back without closing it")
  func leaseDoesNotClose() async throws {
    let store = try Self.store()
    let key = CacheKey(primary: "leased")
    try await Self.write(store, key, Self.pattern(100_000))
    let file = try #require(Self.fileBody(store, key))
    let inode = try #require(Self.inode(file.file.descriptor))
    for _ in 0..<3 {
      let lease = file.lease()
      #expect(lease.region.readableBytes == 100_000)
      lease.end()
    }
    #expect(Self.isOpen(file.file.descriptor, inode: inode))
    #expect(try file.read().readableBytes == 100_000)
  }

  @Test("when the RAM file cannot be made, the body stays in buffers, whole, and it is counted")
  func fallbackKeepsTheObject() async throws {
    let store = try Self.store()
    store.failsFileBodies.store(true, ordering: .relaxed)
    let key = CacheKey(primary: "fallback")
    let bytes = Self.pattern(500_000, seed: 9)
    try await Self.write(store, key, bytes)
    #expect(store.fileBodyFallbacks == 1)
    let hit = try #require(store.immediateLookup(key, maxBodyBytes: .max, readsBody: true) { _, _, _ in true })
    #expect(hit.fileBody == nil)
    #expect(hit.body.flatMap { Array($0.readableBytesView) } == bytes)
    var handler = try #require(try await store.lookup(key)).handler
    #expect(try await Self.readAll(&handler, maxChunk: .max) == bytes)
    store.failsFileBodies.store(false, ordering: .relaxed)
    try await Self.write(store, CacheKey(primary: "after"), bytes)
    #expect(Self.fileBody(store, CacheKey(primary: "after")) != nil)
    #expect(store.fileBodyFallbacks == 1)
  }

  @Test("evicted and replaced file-backed objects close their descriptors")
  func evictionClosesFiles() async throws {
    // Room for about four 256 KiB objects: writing twelve evicts most of them.
    let store = try Self.store(budget: 1100 << 10)
    var opened: [(key: CacheKey, descriptor: CInt, inode: UInt64)] = []
    for i in 0..<12 {
      let key = CacheKey(primary: "evict/\(i)")
      try await Self.write(store, key, Self.pattern(256 << 10, seed: UInt32(i)))
      if let (descriptor, inode) = Self.openFile(store, key) { opened.append((key, descriptor, inode)) }
    }
    #expect(opened.count == 12)
    #expect(store.objectCount < 12)
    for (key, descriptor, inode) in opened {
      let present = Self.fileBody(store, key) != nil
      #expect(Self.isOpen(descriptor, inode: inode) == present, "\(key.primary): present \(present)")
    }
    // Replacing one closes the old file.
    let survivor = try #require(opened.last)
    try await Self.write(store, survivor.key, Self.pattern(256 << 10, seed: 99))
    #expect(!Self.isOpen(survivor.descriptor, inode: survivor.inode))
    var handler = try #require(try await store.lookup(survivor.key)).handler
    #expect(try await Self.readAll(&handler) == Self.pattern(256 << 10, seed: 99))
  }

  @Test("a reader streaming the fill reads the same bytes after the commit moves them to a file")
  func streamingReaderAcrossCommit() async throws {
    let store = try Self.store()
    let key = CacheKey(primary: "streaming")
    let bytes = Self.pattern(200_000, seed: 5)
    let writer = try await store.missHandler(for: key, meta: Self.meta())
    try await writer.writeBody(ByteBuffer(bytes: bytes[0..<100_000]), eof: false)
    var reader = try #require(try await store.lookup(key)).handler
    var read: [UInt8] = []
    let first = try #require(try await reader.readBody())
    read += first.readableBytesView
    try await writer.writeBody(ByteBuffer(bytes: bytes[100_000...]), eof: true)
    _ = try await writer.finish()
    #expect(Self.fileBody(store, key) != nil)
    read += try await Self.readAll(&reader, maxChunk: .max)
    #expect(read == bytes)
  }
}
