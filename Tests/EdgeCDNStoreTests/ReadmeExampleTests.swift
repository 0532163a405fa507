import EdgeCDNStore
import NIOCore
import Testing

/// README.md's library example, kept compiling and true.
@Suite("README example")
struct ReadmeExampleTests {
  @Test("write, hit, purge as README.md shows")
  func readmeExample() async throws {
    let store = try MemoryStore(configuration: MemoryStoreConfiguration(byteBudget: 512 << 20))
    let key = CacheKey(namespace: "site-a", primary: "example.com/logo.png")
    let now = CacheTime.now()
    let meta = CacheMeta(freshUntil: now.adding(seconds: 300), created: now, response: .init(status: 200))

    let writer = try await store.missHandler(for: key, meta: meta)
    try await writer.writeBody(ByteBuffer(string: "hello"), eof: true)
    _ = try await writer.finish()

    var read = 0
    if var hit = try await store.lookup(key) {
      while let chunk = try await hit.handler.readBody() { read += chunk.readableBytes }
      try await hit.handler.finish()
    }
    #expect(read == 5)
    #expect(try await store.purge(key.compact, reason: .invalidation))
    #expect(try await store.lookup(key) == nil)
  }
}
