import EdgeCDN
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// The proxy's origin side as a client sees it: Expect: 100-continue uploads, an origin
/// that fails mid-upload, the header names a revalidation leaves, and large bodies.
@Suite(.serialized) struct ProxyOriginSideTests {
  func proxyPort(_ h: ProxyHarness) -> Int { h.app.server.localAddress?.port ?? 0 }

  /// A client that waits for 100 Continue before it sends its body (as curl does for
  /// large uploads) gets it at once, and the upload goes through; the expectation is
  /// answered by the proxy, not forwarded.
  @Test func expectContinueIsAnsweredAndTheUploadGoesThrough() async throws {
    try await ProxyHarness.run { h in
      let received = Atomic<Int>(0)
      h.origin.route("/upload") { request, _ in
        guard let body = request.body else { return .text("no body") }
        while let chunk = try? await body.read() { received.add(chunk.readableBytes, ordering: .relaxed) }
        return .text("got \(received.load(ordering: .relaxed))")
      }
      let size = 200 << 10
      let client = try await RawClient(port: proxyPort(h))
      try await client.send(
        "PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(size)\r\nExpect: 100-continue\r\n\r\n")
      // Waits as the client would, but longer than curl's 1 s so a loaded machine cannot
      // fail it; without an answer nothing is sent and the test fails.
      let continued = try await client.waitFor(milliseconds: 10_000) { $0.text.contains("\r\n\r\n") }
      #expect(continued && client.text.hasPrefix("HTTP/1.1 100 Continue\r\n"), "\(client.text.prefix(200))")
      guard continued else { return }
      try await client.send(repeating: UInt8(ascii: "x"), count: size)
      #expect(try await client.waitFor(milliseconds: 20_000) { $0.text.contains("got \(size)") }, "\(client.text)")
      #expect(client.text.components(separatedBy: "HTTP/1.1 100").count == 2)
      #expect(client.text.contains("HTTP/1.1 200 OK"))
      #expect(h.origin.lastRequest.withLock { $0?.headers.contains(name: "expect") } == false)

      // An HTTP/1.0 client never gets a 1xx (RFC 9110 §15.2).
      let old = try await RawClient(port: proxyPort(h))
      try await old.send("PUT /upload HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc")
      #expect(try await old.waitFor(milliseconds: 20_000) { $0.text.contains("got ") }, "\(old.text)")
      #expect(!old.text.contains(" 100 "))
      await client.close()
      await old.close()
    }
  }

  /// An origin that drops the connection while a slow client is still uploading: the
  /// client gets its 502 at once (not after the rest of its body), with Connection: close,
  /// and the connection closes after a bounded read of what follows.
  @Test func originFailingMidUploadAnswers502AtOnce() async throws {
    let dying = try await DyingOrigin.start(closeAfter: 32 << 10)
    defer { dying.close() }
    try await ProxyHarness.run(configure: { $0.origin = .init(host: "127.0.0.1", port: dying.port) }) { h in
      let client = try await RawClient(port: proxyPort(h))
      let total = 16 << 20
      try await client.send("PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(total)\r\n\r\n")
      try await client.send(repeating: UInt8(ascii: "s"), count: 128 << 10)
      // The client sends nothing more until it has an answer.
      let answered = try await client.waitFor(milliseconds: 20_000) { $0.text.contains("bad gateway") }
      #expect(answered, "\(client.text.prefix(200))")
      #expect(client.text.hasPrefix("HTTP/1.1 502"), "\(client.text.prefix(200))")
      #expect(client.text.lowercased().contains("connection: close"))
      // A client that goes on sending is read for a bounded amount, then closed: far less
      // than the 16 MiB it announced.
      try? await client.send(repeating: UInt8(ascii: "s"), count: 4 << 20, piece: 64 << 10)
      #expect(try await client.waitFor(milliseconds: 20_000) { $0.isClosed })
      #expect(client.text.components(separatedBy: "HTTP/1.1 ").count == 2)
      await client.close()
    }
  }

  /// A client that stops sending once it has its 502 (as curl does) gets its connection
  /// closed after the answer, not at the idle timeout: the handler stops reading its body.
  @Test func aClientThatStopsSendingAfterThe502IsClosedPromptly() async throws {
    let dying = try await DyingOrigin.start(closeAfter: 32 << 10)
    defer { dying.close() }
    try await ProxyHarness.run(configure: {
      $0.origin = .init(host: "127.0.0.1", port: dying.port)
      $0.idleTimeoutSeconds = 60
    }) { h in
      let client = try await RawClient(port: proxyPort(h))
      try await client.send("PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(16 << 20)\r\n\r\n")
      try await client.send(repeating: UInt8(ascii: "s"), count: 128 << 10)
      #expect(try await client.waitFor(milliseconds: 20_000) { $0.text.contains("bad gateway") })
      // Sends nothing more, and keeps its side open.
      let answered = ContinuousClock.now
      #expect(try await client.waitFor(milliseconds: 20_000) { $0.isClosed }, "closed well before the idle timeout")
      #expect(ContinuousClock.now - answered < .seconds(20))
      await client.close()
    }
  }

  /// A 304 refreshes the stored fields without renaming them: the origin's `Server`
  /// stays `Server`, and a field only the 304 has keeps the 304's spelling.
  @Test func revalidationKeepsTheHeaderNamesAsTheyCame() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/case") { request, n in
        if n > 1, request.head.headers.first(name: "if-none-match") == "\"c1\"" {
          return OriginReply(
            status: .notModified,
            headers: ["Cache-Control": "max-age=60", "ETag": "\"c1\"", "Server": "origin/2", "X-Added-By-304": "1"])
        }
        return .text("body", ["Cache-Control": "max-age=0", "ETag": "\"c1\"", "Server": "origin/1", "X-Kept": "k"])
      }
      _ = try await h.get("/case")
      for attempt in ["revalidated", "hit"] {
        let response = try await h.get("/case")
        #expect(response.body == "body")
        let names = response.headers.map(\.name)
        #expect(names.contains("Server") && !names.contains("server"), "\(attempt): \(names)")
        #expect(names.contains("Cache-Control") && names.contains("ETag") && names.contains("X-Kept"), "\(names)")
        #expect(names.contains("X-Added-By-304"), "\(attempt): \(names)")
        #expect(response["server"] == "origin/2")
      }
      #expect(h.origin.count("/case") == 2)
    }
  }

  /// Large bodies arrive whole and in order through the origin client's hand-off, on a
  /// miss (stored while streamed) and on a pass (not stored).
  @Test func largeBodiesArriveWhole() async throws {
    try await ProxyHarness.run { h in
      // 2 MiB in 61 distinct pieces of odd sizes, so a lost, repeated or reordered chunk shows.
      let pieces = (0..<61).map { i in String(repeating: Character(UnicodeScalar(UInt8(65 + i % 26))), count: 34_381) }
      let whole = pieces.joined()
      var reply = OriginReply(headers: ["Cache-Control": "max-age=60"], chunks: pieces)
      h.origin.route("/big", reply: reply)
      reply.headers = ["Cache-Control": "no-store"]
      h.origin.route("/pass", reply: reply)
      for path in ["/big", "/big", "/pass"] {
        let response = try await h.get(path)
        #expect(response.status == 200)
        #expect(response.body.count == whole.count, "\(path)")
        #expect(response.body == whole, "\(path)")
      }
      #expect(h.origin.count("/big") == 1)
    }
  }
}

/// An origin that accepts, reads `closeAfter` bytes of a request and closes the connection:
/// a crash mid-upload, as the proxy sees it.
final class DyingOrigin: Sendable {
  let channel: any Channel
  var port: Int { channel.localAddress?.port ?? 0 }

  private init(channel: any Channel) { self.channel = channel }

  final class Closer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let limit: Int
    let seen = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      let bytes = unwrapInboundIn(data).readableBytes
      if seen.add(bytes, ordering: .relaxed).newValue >= limit { context.close(promise: nil) }
    }
  }

  static func start(closeAfter limit: Int) async throws -> DyingOrigin {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(Closer(limit: limit))
        }
      }
      .bind(host: "127.0.0.1", port: 0).get()
    return DyingOrigin(channel: channel)
  }

  func close() {
    channel.close(promise: nil)
  }
}
