import NIOCore
import Synchronization
import Testing

@testable import EdgeCDNStore

#if canImport(Glibc)
  import Glibc

  /// glibc's malloc_usable_size, which the Glibc module does not export.
  @_silgen_name("malloc_usable_size")
  private func mallocUsableSize(_ pointer: UnsafeRawPointer) -> Int
#endif

@Suite("MemoryStore charges what an object holds", .hangGuard())
struct MemoryFootprintTests {
  /// The fields nginx sends with a static file: five of the values are too long to be
  /// held inline in a String. Built at run time, as a parser builds them: each its own
  /// heap string (a literal would live in the binary).
  static func nginxMeta(_ i: Int) -> CacheMeta {
    let now = CacheTime.now()
    var fields: [CacheMeta.Field] = []
    // Appended one by one, as a parsed header is: the array ends with spare capacity.
    for (name, value) in [
      ("server", "nginx/1.22.1"), ("date", "Sat, 28 Nov 2026 02:46:00 GMT"),
      ("content-type", "application/octet-stream"), ("content-length", "1024"),
      ("last-modified", "Sat, 28 Nov 2026 02:40:00 GMT"), ("etag", "\"6929cf40-\(String(i, radix: 16))\""),
      ("cache-control", "public, max-age=3600"), ("accept-ranges", "bytes"),
    ] {
      fields.append(.init(Self.fresh(name), Self.fresh(value)))
    }
    return CacheMeta(freshUntil: now.adding(seconds: 3600), created: now, response: .init(status: 200, fields: fields))
  }

  static func fresh(_ text: String) -> String { String(decoding: Array(text.utf8), as: UTF8.self) }

  /// Where a string's bytes are; equal for two strings sharing one storage.
  static func storage(_ text: String?) -> UnsafeRawPointer? {
    text?.utf8.withContiguousStorageIfAvailable { UnsafeRawPointer($0.baseAddress) } ?? nil
  }

  /// A 1 KiB body as a proxy receives it: two slices of a socket read buffer four times larger.
  static func write(_ store: MemoryStore, _ key: CacheKey, meta: CacheMeta) async throws {
    let read = ByteBuffer(repeating: 9, count: 4096)
    let handler = try await store.missHandler(for: key, meta: meta)
    try await handler.writeBody(try #require(read.getSlice(at: 300, length: 700)), eof: false)
    try await handler.writeBody(try #require(read.getSlice(at: 1000, length: 324)), eof: true)
    _ = try await handler.finish()
  }

  #if canImport(Glibc)
    /// The chunk malloc gave `pointer`: its usable size and the 8-byte header.
    static func chunk(_ pointer: UnsafeRawPointer) -> Int { mallocUsableSize(pointer) + 8 }

    /// What a committed entry holds, measured with malloc_usable_size where the allocation
    /// can be reached (the entry, the body's storage, storage object and chunk list, the
    /// field array) and by `HeapFootprint`'s model for the rest (strings, index slot,
    /// eviction key).
    static func measured(_ entry: MemoryStore.Entry, store: MemoryStore) throws -> Int {
      var bytes = chunk(UnsafeRawPointer(Unmanaged.passUnretained(entry).toOpaque()))
      let body = try #require(entry.completeBody)
      if !body.chunks.isEmpty { bytes += chunk(unsafeBitCast(body.chunks, to: UnsafeRawPointer.self)) }
      for buffer in body.chunks {
        try #require(ExactBuffer.isExact(buffer), "a committed small body is one exactly sized buffer")
        bytes += buffer.withVeryUnsafeBytesWithStorageManagement { storageBytes, storage in
          storageBytes.baseAddress.map { chunk($0) + chunk(UnsafeRawPointer(storage.toOpaque())) } ?? 0
        }
      }
      let fields = entry.meta.response.fields
      if !fields.isEmpty { bytes += chunk(unsafeBitCast(fields, to: UnsafeRawPointer.self)) }
      for field in fields { bytes += HeapFootprint.string(field.name) + HeapFootprint.string(field.value) }
      return bytes + MemoryStore.indexSlotBytes + store.evictionManager.trackingBytesPerKey
    }
  #endif

  @Test("a small object's charge covers its allocations, and not much more")
  func chargeCoversAllocations() async throws {
    let store = try MemoryStore(configuration: .init(byteBudget: 64 << 20, maxObjectSize: 1 << 20, shardCount: 4))
    var total = 0
    for i in 0..<32 {
      let key = CacheKey(primary: "example.com/small/\(i)")
      try await Self.write(store, key, meta: Self.nginxMeta(i))
      let footprint = try #require(store.footprint(of: key))
      #expect(footprint.body < 1024 + 200, "body of 1024 bytes charged \(footprint.body)")
      total += footprint.total
      #if canImport(Glibc)
        let hash = key.combinedHash
        let entry = try #require(store.shard(for: hash).pointee.withLock { $0.committed[hash] })
        let measured = try Self.measured(entry, store: store)
        #expect(footprint.total >= measured * 95 / 100, "charged \(footprint.total) of \(measured) bytes held")
        #expect(footprint.total <= measured * 125 / 100, "charged \(footprint.total) for \(measured) bytes held")
      #endif
    }
    #expect(store.usedBytes == total)
    // Far more than body and encoded meta, which is all the budget used to see.
    #expect(total / 32 > 1024 + Self.nginxMeta(0).encodedSizeEstimate + 300)
  }

  @Test("equal field strings of stored metas share one storage")
  func fieldsInterned() async throws {
    let store = try MemoryStore()
    let (a, b) = (CacheKey(primary: "example.com/a"), CacheKey(primary: "example.com/b"))
    try await Self.write(store, a, meta: Self.nginxMeta(0x1_0000))
    try await Self.write(store, b, meta: Self.nginxMeta(0x2_0000))
    let first = try #require(try await store.lookup(a)).meta.response
    let second = try #require(try await store.lookup(b)).meta.response
    #expect(first["content-type"] == "application/octet-stream")
    #expect(Self.storage(first["content-type"]) != nil)
    #expect(Self.storage(first["content-type"]) == Self.storage(second["content-type"]))
    #expect(Self.storage(first["cache-control"]) == Self.storage(second["cache-control"]))
    // Distinct values stay distinct.
    #expect(first["etag"] != second["etag"])
    #expect(first["etag"] == "\"6929cf40-10000\"")
  }

  final class Memo: MemoFootprint {
    let heapFootprint: Int
    init(_ bytes: Int) { heapFootprint = bytes }
  }

  static func immediate(_ store: MemoryStore, _ key: CacheKey) throws -> any EntryMemo {
    let hit = try #require(store.immediateLookup(key, maxBodyBytes: 1 << 20, readsBody: true) { _, _, _ in true })
    return try #require(hit.memo)
  }

  @Test("a memo kept in an entry is charged while the entry is indexed, and given back with it")
  func memoCharged() async throws {
    let store = try MemoryStore(configuration: .init(byteBudget: 1 << 20, maxObjectSize: 1 << 20, shardCount: 4))
    let key = CacheKey(primary: "example.com/memo")
    try await Self.write(store, key, meta: Self.nginxMeta(1))
    let stored = store.usedBytes
    let memo = try Self.immediate(store, key)
    let first = Memo(500)
    let kept: Memo? = memo.keepMemo(first)
    #expect(kept === first)
    #expect(store.usedBytes == stored + 500)
    #expect(store.footprint(of: key)?.memo == 500)
    // A second memo is not kept, nor charged.
    let second: Memo? = memo.keepMemo(Memo(700))
    #expect(second === first)
    #expect(store.usedBytes == stored + 500)
    // A new version (updateMeta) starts without a memo: the old one's charge goes.
    #expect(try await store.updateMeta(key, meta: Self.nginxMeta(1)))
    #expect(store.usedBytes == stored)
    let renewed = try Self.immediate(store, key)
    _ = renewed.keepMemo(Memo(300))
    #expect(store.usedBytes == stored + 300)
    // Purged, the entry gives back all.
    #expect(try await store.purge(key.compact, reason: .invalidation))
    #expect(store.usedBytes == 0)
    // A memo kept on an entry that has left the index is not charged.
    try await Self.write(store, key, meta: Self.nginxMeta(1))
    let late = try Self.immediate(store, key)
    #expect(try await store.purge(key.compact, reason: .invalidation))
    _ = late.keepMemo(Memo(400))
    #expect(store.usedBytes == 0)
  }

  @Test("a memo without room in the budget is handed back unkept, and evicts nothing")
  func memoWithoutRoom() async throws {
    let store = try MemoryStore(configuration: .init(byteBudget: 8192, maxObjectSize: 8192, shardCount: 1))
    let key = CacheKey(primary: "example.com/full")
    try await Self.write(store, key, meta: Self.nginxMeta(2))
    let memo = try Self.immediate(store, key)
    let used = store.usedBytes
    let huge = Memo(1 << 20)
    let unkept: Memo? = memo.keepMemo(huge)
    #expect(unkept === huge)
    #expect(memo.memo(as: Memo.self) == nil)
    #expect(store.usedBytes == used, "nothing charged, nothing evicted")
    #expect(store.objectCount == 1)
    // Just over the room left: still nothing evicted for it (it could be the entry itself).
    let overRoom = Memo(8192 - used + 1)
    let alsoUnkept: Memo? = memo.keepMemo(overRoom)
    #expect(alsoUnkept === overRoom)
    #expect(store.objectCount == 1)
    #expect(try Self.immediate(store, key).memo(as: Memo.self) == nil)
  }
}
