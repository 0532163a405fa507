import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// `ConnectionIdleHandler`: idle means neither reads nor writes for the timeout.
@Suite struct ConnectionIdleTests {
  @Test func activeConnectionStaysOpenAndClosesOnceQuiet() async throws {
    try await ProxyHarness.run(configure: { $0.idleTimeoutSeconds = 2 }) { h in
      h.origin.route("/i", reply: .text("i", ["Cache-Control": "max-age=60"]))
      // Cached first: a miss leaves the client's connection silent while the origin answers.
      _ = try await h.get("/i")
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      // 4 s of requests 400 ms apart: twice the timeout, never idle for it.
      for n in 1...10 {
        try await client.send("GET /i HTTP/1.1\r\nHost: example.test\r\n\r\n")
        #expect(try await client.waitFor { $0.text.ranges(of: "HTTP/1.1 200").count == n })
        try await Task.sleep(for: .milliseconds(400))
        #expect(!client.isClosed, "closed after \(n) requests while active")
      }
      let quietSince = ContinuousClock.now
      #expect(try await client.waitFor(milliseconds: 8000) { $0.isClosed })
      let waited = ContinuousClock.now - quietSince
      #expect(waited >= .milliseconds(1200), "closed \(waited) after the last request, before the 2 s timeout")
    }
  }
}
