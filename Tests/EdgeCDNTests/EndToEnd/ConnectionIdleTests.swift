import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// `ConnectionIdleHandler`: idle means neither reads nor writes for the timeout.
@Suite struct ConnectionIdleTests {
  @Test func activeConnectionStaysOpenAndClosesOnceQuiet() async throws {
    try await ProxyHarness.run(configure: { $0.idleTimeoutSeconds = 1 }) { h in
      h.origin.route("/i", reply: .text("i", ["Cache-Control": "max-age=60"]))
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      // 2 s of requests 250 ms apart: twice the timeout, never idle for it.
      for n in 1...8 {
        try await client.send("GET /i HTTP/1.1\r\nHost: example.test\r\n\r\n")
        #expect(try await client.waitFor { $0.text.ranges(of: "HTTP/1.1 200").count == n })
        try await Task.sleep(for: .milliseconds(250))
        #expect(!client.isClosed, "closed after \(n) requests while active")
      }
      let quietSince = ContinuousClock.now
      #expect(try await client.waitFor(milliseconds: 4000) { $0.isClosed })
      let waited = ContinuousClock.now - quietSince
      #expect(waited >= .milliseconds(500), "closed \(waited) after the last request, before the 1 s timeout")
    }
  }
}
