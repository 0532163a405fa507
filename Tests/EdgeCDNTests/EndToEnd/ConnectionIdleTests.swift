import EdgeCDNStore
import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// `ConnectionIdleHandler`: idle means neither reads nor writes for the timeout.
@Suite struct ConnectionIdleTests {
  @Test func activeConnectionStaysOpenAndClosesOnceQuiet() async throws {
    try await ProxyHarness.run(configure: { $0.idleTimeoutSeconds = 4 }) { h in
      // Stored directly: a miss would leave the client's connection silent while the origin
      // answers, which on a loaded machine can itself last a timeout.
      try await h.store("/i", body: "i", fields: [.init("Content-Length", "1")])
      // A run whose check a stall voided proves nothing: another, on a new connection, a
      // few times at most; the test fails rather than pass unchecked.
      var checked: (client: RawClient, lastSent: ContinuousClock.Instant)?
      for _ in 0..<3 where checked == nil {
        checked = try await activeRun(h)
      }
      guard let (client, sent) = checked else {
        Issue.record("every run stalled for over 2 s between requests: the machine was too loaded to check")
        return
      }
      #expect(try await client.waitFor(milliseconds: 15000) { $0.isClosed })
      // Closed at least a timeout after the last activity, which came after `sent`.
      let waited = ContinuousClock.now - sent
      #expect(waited >= .seconds(4), "closed \(waited) after the last request, before the 4 s timeout")
    }
  }

  /// 4 s of requests 400 ms apart on a new connection: longer than the timeout, never idle
  /// for it; returns the connection and when its last request was sent. The server's last
  /// activity came after the previous request was sent, so the connection has been quiet
  /// for at most the time since then: judged only while that is well under the timeout.
  /// Nil when it was not (a loaded machine can stall this task for seconds, and then the
  /// connection really was quiet and closing it is right).
  func activeRun(_ h: ProxyHarness) async throws -> (client: RawClient, lastSent: ContinuousClock.Instant)? {
    let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
    var sent = ContinuousClock.now
    for n in 1...10 {
      if n > 1 {
        guard ContinuousClock.now - sent < .seconds(2) else {
          await client.close()
          return nil
        }
        #expect(!client.isClosed, "closed after \(n - 1) requests while active")
      }
      sent = ContinuousClock.now
      try await client.send("GET /i HTTP/1.1\r\nHost: example.test\r\n\r\n")
      #expect(try await client.waitFor(milliseconds: 8000) { $0.text.ranges(of: "HTTP/1.1 200").count == n })
      try await Task.sleep(for: .milliseconds(400))
    }
    return (client, sent)
  }
}
