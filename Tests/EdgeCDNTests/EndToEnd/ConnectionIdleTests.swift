import EdgeCDNStore
import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// `ConnectionIdleTimer`: idle means neither reads nor writes for the timeout while it is
/// the client's turn; the server's own waits (the origin, a fill) are not the client's.
@Suite struct ConnectionIdleTests {
  /// An origin slow to answer (2.5 s, on the fill) or slow between chunks (1.5 s, on both),
  /// behind a 1 s idle timeout: the client, which sent its whole request, gets the whole
  /// response on its connection. Before, the server's silence was taken for the client's and the
  /// connection closed after about a second. Once the response is out, the quiet is the
  /// client's again.
  @Test func aSlowOriginIsNotTakenForAnIdleClient() async throws {
    try await ProxyHarness.run(configure: { $0.idleTimeoutSeconds = 1 }) { h in
      let chunks = ["first,", "second,", "third"]
      for (path, cacheControl, headDelay) in [("/slow-fill", "max-age=60", 2500), ("/slow-pass", "no-store", 0)] {
        h.origin.route(path) { _, _ in
          OriginReply(
            status: .ok, headers: ["Cache-Control": cacheControl, "Content-Length": "18"], chunks: chunks,
            delayMilliseconds: Int64(headDelay), chunkDelayMilliseconds: 1500)
        }
        guard let client = try await Self.connectAndAsk(h, "GET \(path) HTTP/1.1\r\nHost: example.test\r\n\r\n")
        else {
          Issue.record("\(path): three connections were each idle for 0.9 s before the request went out")
          return
        }
        _ = try await client.waitFor(milliseconds: 20000) { $0.text.hasSuffix("first,second,third") || $0.isClosed }
        #expect(client.text.hasPrefix("HTTP/1.1 200"), "\(path): \(client.text.debugDescription)")
        #expect(client.text.hasSuffix("first,second,third"), "\(path): cut (closed: \(client.isClosed))")
        #expect(try await client.waitFor(milliseconds: 5000) { $0.isClosed }, "\(path): quiet after its response")
        await client.close()
      }
    }
  }

  /// A new connection with `request` sent on it, if that took under 0.9 s: a connection
  /// quiet for the 1 s timeout before its request is rightly closed (on a loaded machine,
  /// connecting and sending can take that long), and closing it proves nothing. A few
  /// tries; nil when each took that long.
  static func connectAndAsk(_ h: ProxyHarness, _ request: String) async throws -> RawClient? {
    for _ in 0..<3 {
      let start = ContinuousClock.now
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      do {
        try await client.send(request)
        if ContinuousClock.now - start < .milliseconds(900) { return client }
      } catch {}
      await client.close()
    }
    return nil
  }

  @Test func activeConnectionStaysOpenAndClosesOnceQuiet() async throws {
    try await ProxyHarness.run(configure: { $0.idleTimeoutSeconds = 4 }) { h in
      // Stored directly: a miss would leave the client's connection silent while the origin
      // answers, which on a loaded machine can itself last a timeout.
      try await h.store("/i", body: "i", fields: [.init("Content-Length", "1")])
      // A run whose check a stall voided proves nothing: another, on a new connection, a
      // few times at most; the test fails rather than pass unchecked.
      var checked: (client: RawClient, lastSent: NIODeadline)?
      for _ in 0..<3 where checked == nil {
        checked = try await activeRun(h)
      }
      guard let (client, sent) = checked else {
        Issue.record("every run had its requests 2 s or more apart: the machine was too loaded to check")
        return
      }
      #expect(try await client.waitFor(milliseconds: 15000) { $0.isClosed })
      // Closed at least a timeout after the last activity, which came after `sent`.
      let waited = try #require(client.closedAt) - sent
      #expect(waited >= .seconds(4), "closed \(waited) after the last request, before the 4 s timeout")
    }
  }

  /// 4 s of requests 400 ms apart on a new connection: longer than the timeout, never idle
  /// for it. Sent from the connection's event loop and answered from the proxy's (a fresh
  /// hit), so that a starved cooperative pool spaces out neither. Returns the connection
  /// and when its last request was sent; nil when the loop still let two requests lie
  /// 2 s or more apart (then the connection may really have been quiet, and closing it
  /// was right).
  func activeRun(_ h: ProxyHarness) async throws -> (client: RawClient, lastSent: NIODeadline)? {
    let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
    let sent = try await client.send(
      "GET /i HTTP/1.1\r\nHost: example.test\r\n\r\n", count: 10, every: .milliseconds(400))
    guard let first = sent.first, let last = sent.last,
      zip(sent.dropFirst(), sent).allSatisfy({ $0 - $1 < .seconds(2) })
    else {
      await client.close()
      return nil
    }
    // A loop that sent the first request a timeout or more after connecting left the
    // connection quiet for it: closing was right, and the run proves nothing.
    if let closedAt = client.closedAt, closedAt < first {
      await client.close()
      return nil
    }
    // Every request answered: the connection was not closed while active.
    #expect(try await client.waitFor(milliseconds: 8000) { $0.text.ranges(of: "HTTP/1.1 200").count == 10 })
    #expect(!client.isClosed || client.closedAt.map { $0 - last >= .seconds(4) } == true, "closed while active")
    return (client, last)
  }
}
