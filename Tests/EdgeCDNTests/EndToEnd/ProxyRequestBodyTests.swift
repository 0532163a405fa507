import EdgeCDN
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// Request bodies stream through the proxy to the origin (they are not buffered), with
/// the size limit kept, a client that leaves mid-upload, and an origin that answers early.
@Suite(.serialized) struct ProxyRequestBodyTests {
  func proxyPort(_ h: ProxyHarness) -> Int { h.app.server.localAddress?.port ?? 0 }

  /// What an uploading origin route saw.
  final class Upload: Sendable {
    let received = Atomic<Int>(0)
    let failure = Mutex<String?>(nil)
    let completed = Atomic<Bool>(false)
    var didComplete: Bool { completed.load(ordering: .relaxed) }
    var bytes: Int { received.load(ordering: .relaxed) }

    /// Reads the whole body, counting it.
    func read(_ request: ServerRequest) async -> OriginReply {
      guard let body = request.body else { return .text("no body") }
      do {
        while let chunk = try await body.read() { received.add(chunk.readableBytes, ordering: .relaxed) }
        completed.store(true, ordering: .relaxed)
        return .text("got \(received.load(ordering: .relaxed))")
      } catch {
        failure.withLock { $0 = "\(error)" }
        return .text("failed", status: .badRequest)
      }
    }
  }

  /// Reads the body, stopping after `pauseAfter` bytes until `resume` is set (bounded).
  final class GatedUpload: Sendable {
    let received = Atomic<Int>(0)
    let resume = Atomic<Bool>(false)
    let pauseAfter: Int

    init(pauseAfter: Int) { self.pauseAfter = pauseAfter }

    func read(_ request: ServerRequest) async -> OriginReply {
      guard let body = request.body else { return .text("no body") }
      do {
        while let chunk = try await body.read() {
          let total = received.add(chunk.readableBytes, ordering: .relaxed).newValue
          var waited = 0
          while total >= pauseAfter, !resume.load(ordering: .relaxed), waited < 6000 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
          }
        }
        return .text("got \(received.load(ordering: .relaxed))")
      } catch {
        return .text("failed", status: .badRequest)
      }
    }
  }

  /// Backpressure, measured on the bytes rather than on the process's memory (which the
  /// suites running beside this one move by tens of MiB): while the origin stops reading,
  /// the client can get only what the sockets' buffers and the proxy's few chunks hold
  /// ahead of it, not the 64 MiB a buffering proxy would take.
  @Test func largeBodyStreamsToTheOriginWithBackpressure() async throws {
    let total = 64 << 20
    try await ProxyHarness.run(configure: { $0.maxRequestBodyBytes = 128 << 20 }) { h in
      let upload = GatedUpload(pauseAfter: 1 << 20)
      h.origin.route("/upload") { request, _ in await upload.read(request) }
      let client = try await RawClient(port: proxyPort(h))
      try await client.send("PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(total)\r\n\r\n")
      let sent = Atomic<Int>(0)
      let sender = Task {
        var left = total
        while left > 0 {
          let n = min(256 << 10, left)
          try await client.send(ByteBuffer(repeating: UInt8(ascii: "a"), count: n))
          sent.add(n, ordering: .relaxed)
          left -= n
        }
      }
      // The origin reads the first MiB while the client is still sending: a buffering
      // proxy would forward nothing before the last byte.
      try await h.eventually("the origin to read the first MiB") {
        upload.received.load(ordering: .relaxed) >= 1 << 20
      }
      // Wait (bounded) until the client's sending stalls against the paused origin.
      var last = -1
      for _ in 0..<100 {
        let now = sent.load(ordering: .relaxed)
        if now == last { break }
        last = now
        try await Task.sleep(for: .milliseconds(300))
      }
      let ahead = sent.load(ordering: .relaxed) - upload.received.load(ordering: .relaxed)
      print("proxy request body test: client \(ahead >> 20) MiB ahead of a paused origin")
      #expect(sent.load(ordering: .relaxed) < total, "the whole body went in while the origin read none of it")
      #expect(ahead < 32 << 20, "client \(ahead >> 20) MiB ahead of a paused origin")
      upload.resume.store(true, ordering: .relaxed)
      try await sender.value
      let answered = try await client.waitFor(milliseconds: 60_000) { $0.text.contains("got \(total)") }
      #expect(answered, "\(client.text.prefix(200))")
      #expect(upload.received.load(ordering: .relaxed) == total)
      await client.close()
    }
  }

  @Test func chunkedBodyStreamsAndIsCutOffPastTheLimit() async throws {
    try await ProxyHarness.run(configure: { $0.maxRequestBodyBytes = 1 << 20 }) { h in
      let upload = Upload()
      h.origin.route("/upload") { request, _ in await upload.read(request) }
      // Under the limit: the chunked body reaches the origin whole.
      let small = try await RawClient(port: proxyPort(h))
      try await small.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
      for _ in 0..<4 {
        try await small.send("8000\r\n")
        try await small.send(repeating: UInt8(ascii: "c"), count: 0x8000)
        try await small.send("\r\n")
      }
      try await small.send("0\r\n\r\n")
      #expect(try await small.waitFor(milliseconds: 20_000) { $0.text.contains("got \(4 * 0x8000)") })
      await small.close()

      // Over the limit: 413, the connection closes, and the origin never takes the cut
      // body for a whole one.
      let large = Upload()
      h.origin.route("/large") { request, _ in await large.read(request) }
      let client = try await RawClient(port: proxyPort(h))
      try await client.send("POST /large HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
      for _ in 0..<40 where !client.isClosed {
        try? await client.send("10000\r\n")
        try? await client.send(repeating: UInt8(ascii: "d"), count: 0x10000)
        try? await client.send("\r\n")
      }
      #expect(try await client.waitFor(milliseconds: 20_000) { $0.isClosed })
      #expect(client.text.hasPrefix("HTTP/1.1 413"), "\(client.text.prefix(200))")
      try await h.eventually("the origin to see the body cut") { large.failure.withLock { $0 != nil } }
      #expect(large.didComplete == false)
      #expect(large.bytes <= 1 << 20)
    }
  }

  @Test func clientLeavingMidUploadClosesTheOriginRequest() async throws {
    try await ProxyHarness.run { h in
      let upload = Upload()
      h.origin.route("/upload") { request, _ in await upload.read(request) }
      h.origin.route("/after", reply: .text("still serving"))
      let client = try await RawClient(port: proxyPort(h))
      try await client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(4 << 20)\r\n\r\n")
      try await client.send(repeating: UInt8(ascii: "e"), count: 512 << 10)
      try await h.eventually("the origin to read the first bytes") { upload.received.load(ordering: .relaxed) > 0 }
      await client.close()
      // The origin sees its request cut (its connection closed mid-body), not a short body.
      try await h.eventually("the origin to see the upload cut") { upload.failure.withLock { $0 != nil } }
      #expect(upload.didComplete == false)
      #expect(upload.bytes < 4 << 20)
      // The proxy goes on serving, through a fresh origin connection.
      let after = try await h.request("/after", method: .POST)
      #expect(after.body == "still serving")
    }
  }

  @Test func originAnsweringEarlyIsForwardedBeforeTheBodyEnds() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/early", reply: .text("rejected", status: .forbidden))
      h.origin.route("/after", reply: .text("still serving"))
      let client = try await RawClient(port: proxyPort(h))
      try await client.send("PUT /early HTTP/1.1\r\nHost: x\r\nContent-Length: \(8 << 20)\r\n\r\n")
      try await client.send(repeating: UInt8(ascii: "f"), count: 64 << 10)
      // The answer arrives while most of the body is still unsent.
      #expect(try await client.waitFor(milliseconds: 20_000) { $0.text.contains("rejected") })
      #expect(client.text.hasPrefix("HTTP/1.1 403"))
      #expect(client.text.lowercased().contains("connection: close"))
      // The rest is read and dropped, then the connection closes (never parsed as requests).
      try? await client.send(repeating: UInt8(ascii: "f"), count: (8 << 20) - (64 << 10), piece: 256 << 10)
      #expect(try await client.waitFor(milliseconds: 20_000) { $0.isClosed })
      #expect(client.text.components(separatedBy: "HTTP/1.1 ").count == 2)
      let after = try await h.request("/after", method: .POST)
      #expect(after.body == "still serving")
    }
  }
}
