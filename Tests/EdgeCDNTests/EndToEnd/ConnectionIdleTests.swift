import EdgeCDNStore
import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// `ConnectionIdleHandler`: idle means neither reads nor writes for the timeout.
@Suite struct ConnectionIdleTests {
  @Test func activeConnectionStaysOpenAndClosesOnceQuiet() async throws {
    try await ProxyHarness.run(configure: { $0.idleTimeoutSeconds = 2 }) { h in
      // Stored directly: a miss would leave the client's connection silent while the origin
      // answers, which on a loaded machine can itself last a timeout.
      let now = CacheTime.now()
      let meta = CacheMeta(
        freshUntil: now.adding(seconds: 60), created: now,
        response: .init(status: 200, reason: "OK", fields: [.init("Content-Length", "1")]),
        extensions: EntryExtensions().encoded())
      let key = CachingProxy<MemoryStore>.cacheKey(
        for: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/i", headers: ["Host": "example.test"]))
      let writer = try await h.store.missHandler(for: key, meta: meta)
      try await writer.writeBody(ByteBuffer(string: "i"), eof: true)
      _ = try await writer.finish()
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      // 4 s of requests 400 ms apart: twice the timeout, never idle for it.
      for n in 1...10 {
        try await client.send("GET /i HTTP/1.1\r\nHost: example.test\r\n\r\n")
        #expect(try await client.waitFor { $0.text.ranges(of: "HTTP/1.1 200").count == n })
        let answered = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(400))
        // A loaded machine can stall this task past the timeout: then the connection really
        // was quiet for it, and closing it is right; only a shorter gap is judged.
        guard ContinuousClock.now - answered < .milliseconds(1500) else { return }
        #expect(!client.isClosed, "closed after \(n) requests while active")
      }
      let quietSince = ContinuousClock.now
      #expect(try await client.waitFor(milliseconds: 8000) { $0.isClosed })
      let waited = ContinuousClock.now - quietSince
      #expect(waited >= .milliseconds(1200), "closed \(waited) after the last request, before the 2 s timeout")
    }
  }
}
