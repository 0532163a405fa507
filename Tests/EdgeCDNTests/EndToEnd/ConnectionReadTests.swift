import NIOCore
import NIOHTTP1
import Synchronization
import Testing

@testable import EdgeCDN

/// The server's reads, which `WireResponder` issues (`autoRead` off): a connection never
/// stops reading while it should read, whichever path answers, and stops while the
/// handlers behind want it to (a client that sends without reading is not buffered
/// without bound).
@Suite struct ConnectionReadTests {
  static func get(_ path: String, method: String = "GET") -> String {
    "\(method) \(path) HTTP/1.1\r\nHost: example.test\r\n\r\n"
  }

  /// The bodies named in `names`, in the order they appear in `text`.
  static func bodies(in text: String, _ names: [String]) -> [String] {
    var found: [(String.Index, String)] = []
    for name in names {
      for range in text.ranges(of: name) { found.append((range.lowerBound, name)) }
    }
    return found.sorted { $0.0 < $1.0 }.map(\.1)
  }

  @Test func aConnectionMixingEveryPathKeepsReading() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/hit", reply: .text("hit-body", ["Cache-Control": "max-age=60"]))
      var miss = OriginReply.text("miss-body", ["Cache-Control": "no-store"])
      miss.delayMilliseconds = 20
      h.origin.route("/miss", reply: miss)
      h.origin.route("/post", reply: .text("post-body", ["Cache-Control": "no-store"]))
      _ = try await h.get("/hit")
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      var responses = 0
      var bodies: [String] = []
      /// Sends `pieces` (50 ms apart) and waits, bounded, for `expected` more responses.
      func step(_ what: String, _ pieces: [String], expecting expected: [String], heads: Int = 0) async throws {
        for (index, piece) in pieces.enumerated() {
          if index > 0 { try await Task.sleep(for: .milliseconds(50)) }
          try await client.send(piece)
        }
        responses += expected.count + heads
        bodies += expected
        let want = responses
        let answered = try await client.waitFor(milliseconds: 20_000) {
          $0.text.ranges(of: "HTTP/1.1 200 OK\r\n").count >= want
        }
        #expect(answered, "\(what): stuck at \(client.text.ranges(of: "HTTP/1.1 200 OK\r\n").count) of \(want)")
      }
      try await step("a hit", [Self.get("/hit")], expecting: ["hit-body"])
      try await step("a miss", [Self.get("/miss")], expecting: ["miss-body"])
      try await step(
        "pipelined in one write",
        [Self.get("/hit") + Self.get("/miss") + Self.get("/hit") + Self.get("/hit", method: "HEAD") + Self.get("/hit")],
        expecting: ["hit-body", "miss-body", "hit-body", "hit-body"], heads: 1)
      try await step(
        "a hit's head in two pieces", ["GET /hit HTTP/1.1\r\nHo", "st: example.test\r\n\r\n"], expecting: ["hit-body"])
      try await step(
        "a hit's head in pieces behind a miss",
        [Self.get("/miss") + "GET /hi", "t HTTP/1.1\r\nHost: example.test\r\n\r\n"],
        expecting: ["miss-body", "hit-body"])
      try await step(
        "a POST with a body", ["POST /post HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello"],
        expecting: ["post-body"])
      try await step(
        "pipelined once the decoder has the input", [Self.get("/hit") + Self.get("/miss") + Self.get("/hit")],
        expecting: ["hit-body", "miss-body", "hit-body"])
      #expect(Self.bodies(in: client.text, ["hit-body", "miss-body", "post-body"]) == bodies, "in request order")
      #expect(!client.isClosed)
      await client.close()
    }
  }

  @Test func aClientReadingLateGetsLargeResponsesAndThoseBehindThem() async throws {
    try await ProxyHarness.run { h in
      let size = 512 << 10
      let cached = String(repeating: "c", count: size)
      let uncached = String(repeating: "u", count: size)
      h.origin.route("/big", reply: .text(cached, ["Cache-Control": "max-age=60"]))
      h.origin.route("/bigmiss", reply: .text(uncached, ["Cache-Control": "no-store"]))
      h.origin.route("/hit", reply: .text("hit-body", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/big")
      _ = try await h.get("/hit")
      // Not reading: the server's writes stall on a full socket while requests wait behind.
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0, autoRead: false)
      try await client.send(Self.get("/big") + Self.get("/hit") + Self.get("/bigmiss") + Self.get("/hit"))
      try await Task.sleep(for: .milliseconds(300))
      try await client.startReading()
      let whole = try await client.waitFor(milliseconds: 30_000) {
        $0.text.ranges(of: "HTTP/1.1 200 OK\r\n").count == 4 && $0.text.hasSuffix("hit-body")
      }
      #expect(whole, "received \(client.text.utf8.count) bytes")
      let text = client.text
      #expect(text.utf8.count > 2 * size)
      let cachedAt = text.firstRange(of: "cccc")?.lowerBound
      let uncachedAt = text.firstRange(of: "uuuu")?.lowerBound
      #expect(cachedAt != nil && uncachedAt != nil)
      if let cachedAt, let uncachedAt { #expect(cachedAt < uncachedAt, "in request order") }
      await client.close()
    }
  }

  /// Whether writing `buffer` completes within `milliseconds`: a write to a server that
  /// stopped reading waits on the full socket buffers.
  static func sends(_ client: RawClient, _ buffer: ByteBuffer, within milliseconds: Int) async -> Bool {
    let done = Mutex(false)
    Task {
      try? await client.send(buffer)
      done.withLock { $0 = true }
    }
    for _ in 0..<(milliseconds / 10) {
      if done.withLock({ $0 }) { return true }
      try? await Task.sleep(for: .milliseconds(10))
    }
    return done.withLock { $0 }
  }

  /// A client that pipelines requests and reads nothing: once its responses fill the
  /// socket, the server answers behind the pipelining handler, which holds the reads; the
  /// client's writes then wait. Were reads issued regardless, the server would take all
  /// of them into memory.
  @Test func aClientThatSendsWithoutReadingIsNotReadWithoutBound() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/hit", reply: .text(String(repeating: "h", count: 64 << 10), ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/hit")
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0, autoRead: false)
      // Padded requests (4 KiB each), so that a server reading without bound shows
      // within a bounded number of requests.
      let request = "GET /hit HTTP/1.1\r\nHost: example.test\r\nX-Pad: \(String(repeating: "p", count: 4000))\r\n\r\n"
      let chunk = ByteBuffer(string: String(repeating: request, count: 16))
      let bound = 48 << 20
      var sent = 0
      while sent < bound, await Self.sends(client, chunk, within: 2000) { sent += chunk.readableBytes }
      #expect(sent < bound, "the server read \(sent) bytes of requests from a client reading nothing")
      await client.close()
    }
  }
}
