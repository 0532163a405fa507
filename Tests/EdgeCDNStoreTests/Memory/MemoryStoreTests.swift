import NIOCore
import Testing

@testable import EdgeCDNStore

@Suite("MemoryStore specifics", .hangGuard())
struct MemoryStoreTests {
  static func meta() -> CacheMeta {
    let now = CacheTime.now()
    return CacheMeta(freshUntil: now.adding(seconds: 60), created: now, response: .init(status: 200))
  }

  static func write(_ store: MemoryStore, _ key: CacheKey, size: Int) async throws {
    let handler = try await store.missHandler(for: key, meta: meta())
    try await handler.writeBody(ByteBuffer(repeating: 7, count: size), eof: true)
    _ = try await handler.finish()
  }

  @Test("an object over maxObjectSize fails its write and leaves nothing; readers get an error")
  func maxObjectSize() async throws {
    let store = try MemoryStore(configuration: .init(byteBudget: 1 << 20, maxObjectSize: 1000, shardCount: 4))
    let key = CacheKey(primary: "big")
    let handler = try await store.missHandler(for: key, meta: Self.meta())
    try await handler.writeBody(ByteBuffer(repeating: 1, count: 600), eof: false)
    var hit = try #require(try await store.lookup(key))
    await #expect(throws: CacheError.objectTooLarge(key: key.combinedHash, size: 1200, limit: 1000)) {
      try await handler.writeBody(ByteBuffer(repeating: 1, count: 600), eof: true)
    }
    #expect(try await store.lookup(key) == nil)
    // The failed write is visible at once: the reader never gets the 600 bytes as a complete body.
    let error = await #expect(throws: CacheError.self) {
      while try await hit.handler.readBody() != nil {}
    }
    #expect(error?.kind == "writer_failed")
    #expect(store.usedBytes == 0)
  }

  @Test("writes in flight hold their bytes: a write that cannot fit fails cleanly")
  func inFlightBudget() async throws {
    let store = try MemoryStore(configuration: .init(byteBudget: 10_000, maxObjectSize: 10_000, shardCount: 4))
    let first = try await store.missHandler(for: CacheKey(primary: "a"), meta: Self.meta())
    try await first.writeBody(ByteBuffer(repeating: 1, count: 9000), eof: false)
    let second = try await store.missHandler(for: CacheKey(primary: "b"), meta: Self.meta())
    await #expect(throws: CacheError.self) {
      try await second.writeBody(ByteBuffer(repeating: 2, count: 2000), eof: true)
    }
    #expect(store.usedBytes <= 10_000)
    _ = try await first.finish()
    #expect(try await store.lookup(CacheKey(primary: "b")) == nil)
    #expect(try await store.lookup(CacheKey(primary: "a")) != nil)
  }

  @Test("a chunk pinning a large buffer is copied, a right-sized one is kept as is")
  func retainableCopiesSlices() throws {
    let store = try MemoryStore()
    let big = ByteBuffer(repeating: 3, count: 64 * 1024)
    let slice = try #require(big.getSlice(at: 0, length: 100))
    #expect(store.retainable(slice).storageCapacity < 1024)
    #expect(store.retainable(big).storageCapacity == big.storageCapacity)
  }

  @Test("a partial reader waiting for the writer stops when its task is cancelled")
  func cancelledReader() async throws {
    let store = try MemoryStore()
    let key = CacheKey(primary: "slow")
    let writer = try await store.missHandler(for: key, meta: Self.meta())
    try await writer.writeBody(ByteBuffer(repeating: 1, count: 10), eof: false)
    let hit = try #require(try await store.lookup(key))
    let reader = Task {
      var handler = hit.handler
      while try await handler.readBody() != nil {}
    }
    try await Task.sleep(for: .milliseconds(20))
    reader.cancel()
    await #expect(throws: CacheError.cancelled(key: key.combinedHash)) { try await reader.value }
    _ = try await writer.finish()
  }

  @Test("eviction reports reach the observer and the manager forgets evicted keys")
  func evictionReports() async throws {
    let lru = ShardedLRU(capacity: 50_000, shardCount: 1)
    let store = try MemoryStore(
      configuration: .init(byteBudget: 50_000, maxObjectSize: 50_000, shardCount: 4), evictionManager: lru)
    for i in 0..<20 { try await Self.write(store, CacheKey(primary: "k\(i)"), size: 4000) }
    #expect(store.usedBytes <= 50_000)
    #expect(lru.totalItems == store.objectCount)
    #expect(lru.totalSize == store.usedBytes)
    // The oldest left first.
    #expect(try await store.lookup(CacheKey(primary: "k0")) == nil)
    #expect(try await store.lookup(CacheKey(primary: "k19")) != nil)
  }

  @Test("invalid settings are refused with the setting's name and range")
  func validation() {
    #expect(throws: ConfigurationError.self) { try MemoryStore(configuration: .init(byteBudget: 10)) }
    do {
      _ = try MemoryStore(configuration: .init(byteBudget: 1 << 20, maxObjectSize: 2 << 20))
      Issue.record("maxObjectSize above the budget must be refused")
    } catch {
      #expect(error.setting == "memory.maxObjectSize")
      #expect(error.description.contains("1...1048576"))
    }
    #expect(throws: ConfigurationError.self) { try MemoryStore(configuration: .init(shardCount: 0)) }
  }
}
