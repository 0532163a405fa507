import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// `WireRequestScan` must never take a request differently from NIOHTTP1's decoder: what
/// it calls plain has the method, target, version, Host and keep-alive the decoder reads,
/// and what it passes on whole is exactly one request to the decoder.
@Suite struct WireRequestScanTests {
  static func scan(_ text: String, line: Int = 1 << 11, header: Int = 1 << 12) -> WireRequestScan {
    ByteBuffer(string: text).withUnsafeReadableBytes {
      WireRequestScan.scan($0, maxRequestLineBytes: line, maxHeaderBytes: header)
    }
  }

  /// The decoder's reading of `text`: every head it produced, and whether it failed.
  static func decode(_ text: String) -> (heads: [HTTPRequestHead], ends: Int, failed: Bool) {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
    defer { _ = try? channel.finish() }
    var failed = false
    do { try channel.writeInbound(ByteBuffer(string: text)) } catch { failed = true }
    var heads: [HTTPRequestHead] = []
    var ends = 0
    while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
      switch part {
      case .head(let head): heads.append(head)
      case .end: ends += 1
      case .body: break
      }
    }
    return (heads, ends, failed)
  }

  /// Checks the scan of one whole request against the decoder; returns the scan.
  @discardableResult
  static func checkAgainstDecoder(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> WireRequestScan
  {
    let scan = scan(text)
    let decoded = decode(text)
    switch scan {
    case .incomplete, .other: break
    case .bodiless(let length):
      #expect(length == text.utf8.count, "one whole request", sourceLocation: sourceLocation)
      #expect(
        !decoded.failed && decoded.heads.count == 1 && decoded.ends == 1, "\(text.debugDescription)",
        sourceLocation: sourceLocation)
    case .plain(let plain, let length):
      #expect(length == text.utf8.count, "one whole request", sourceLocation: sourceLocation)
      guard !decoded.failed, decoded.heads.count == 1, decoded.ends == 1, let head = decoded.heads.first else {
        Issue.record("the decoder refused \(text.debugDescription)", sourceLocation: sourceLocation)
        return scan
      }
      let request = WireRequest(plain, bytes: ByteBuffer(string: text))
      #expect(head.method == (plain.isHEAD ? .HEAD : .GET), sourceLocation: sourceLocation)
      #expect(head.uri == request.uri, sourceLocation: sourceLocation)
      #expect(head.version == request.version, sourceLocation: sourceLocation)
      #expect(head.isKeepAlive == request.isKeepAlive, "\(text.debugDescription)", sourceLocation: sourceLocation)
      #expect(RequestKey.host(head.headers.first(name: "host")) == request.hostValue, sourceLocation: sourceLocation)
      #expect(
        RequestKey.of(head) == request.withTargetAndHost { RequestKey.of(host: $1, target: $0) },
        "one key on both paths", sourceLocation: sourceLocation)
    }
    return scan
  }

  static func isPlain(_ scan: WireRequestScan) -> Bool {
    if case .plain = scan { return true }
    return false
  }

  static func isBodiless(_ scan: WireRequestScan) -> Bool {
    if case .bodiless = scan { return true }
    return false
  }

  @Test(arguments: [
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /a?b=c HTTP/1.1\r\nHost: example.test\r\n\r\n",
    "HEAD /x HTTP/1.1\r\nhost:Example.TEST\r\nUser-Agent: wrk\r\n\r\n",
    "GET /x HTTP/1.1\r\nHOST: \t spaced \t \r\nAccept: */*\r\n\r\n",
    "GET /x HTTP/1.0\r\nHost: a\r\n\r\n",
    "GET /x HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: a\r\nconnection: CLOSE\r\n\r\n",
    "GET /empty HTTP/1.1\r\nHost:\r\nX-Empty:\r\n\r\n",
    "GET /%7Ex~!$&'()*+,;=:@ HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: 127.0.0.1:18083\r\n\r\n",
  ])
  func plainRequestsReadAsTheDecoderReadsThem(text: String) {
    #expect(Self.isPlain(Self.checkAgainstDecoder(text)))
  }

  @Test(arguments: [
    "GET /x HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n",
    "GET /x HTTP/1.1\r\nIf-None-Match: \"e\"\r\n\r\n",
    "GET /x HTTP/1.1\r\nif-modified-since: Sat, 01 Jan 2000 00:00:00 GMT\r\n\r\n",
    "GET /x HTTP/1.1\r\nCache-Control: no-cache\r\n\r\n",
    "GET /x HTTP/1.1\r\nPragma: no-cache\r\n\r\n",
    "GET /x HTTP/1.1\r\nAuthorization: Basic eA==\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "GET / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\nUser-Agent: no-host\r\n\r\n",
    "GET /x HTTP/1.1\r\nConnection: close, te\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: a\r\nProxy-Connection: close\r\n\r\n",
    "GET /x HTTP/1.0\r\nHost: a\r\nProxy-Connection: keep-alive\r\n\r\n",
    "GET /x HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
    "GET /p HTTP/1.1\r\nHost: victim.test/evil\r\n\r\n",
    "GET /p HTTP/1.1\r\nHost: a b\r\n\r\n",
    "GET /p HTTP/1.1\r\nHost: user@victim.test\r\n\r\n",
  ])
  func requestsForTheFullPathGoWhole(text: String) {
    #expect(Self.isBodiless(Self.checkAgainstDecoder(text)))
  }

  @Test(arguments: [
    "GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    "GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET /x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    "GET /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
    "CONNECT example.test:443 HTTP/1.1\r\n\r\n",
    "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a\r\n\r\n",
    "get /x HTTP/1.1\r\n\r\n",
    "GET http://example.test/abs HTTP/1.1\r\nHost: example.test\r\n\r\n",
    "GET * HTTP/1.1\r\n\r\n",
    "GET /x HTTP/1.1\nHost: a\n\n",
    "GET /x HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost : a\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: caf\u{e9}\r\n\r\n",
    "GET /x HTTP/1.1\r\nX: a\u{7}b\r\n\r\n",
    "GET /x HTTP/2.0\r\n\r\n",
    "GET  /x HTTP/1.1\r\n\r\n",
    "GET /x y HTTP/1.1\r\n\r\n",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "NOT HTTP\r\n\r\n",
  ])
  func everythingElseIsTheDecoders(text: String) {
    #expect(Self.scan(text) == .other, "\(text.debugDescription)")
  }

  @Test func everyPrefixOfARequestIsIncomplete() {
    let text = "GET /path HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n"
    let bytes = Array(text.utf8)
    for end in 0..<bytes.count {
      let scan = bytes[0..<end].withUnsafeBytes {
        WireRequestScan.scan($0, maxRequestLineBytes: 1 << 10, maxHeaderBytes: 1 << 10)
      }
      #expect(scan == .incomplete, "prefix of \(end) bytes")
    }
    #expect(Self.isPlain(Self.scan(text)))
  }

  @Test func aHeadOverTheLimitsIsTheDecoders() {
    let text = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"  // request line 17 bytes, fields 11
    #expect(Self.isPlain(Self.scan(text, line: 17, header: 11)))
    #expect(Self.scan(text, line: 16, header: 100) == .bodiless(length: 28), "the server answers 414")
    #expect(Self.scan(text, line: 100, header: 10) == .bodiless(length: 28), "the server answers 431")
    #expect(Self.scan(text, line: 10, header: 10) == .other, "longer than both together")
    #expect(Self.scan(String(text.dropLast(2)), line: 5, header: 5) == .other, "incomplete past the limits")
  }

  /// Random single-byte changes of a few requests: whatever the scan takes, the decoder
  /// must take the same way (checked field by field), so the fast path can never answer a
  /// request the decoder would refuse or read differently.
  @Test func mutatedRequestsNeverDisagreeWithTheDecoder() {
    let bases = [
      "GET /a/b?c=d HTTP/1.1\r\nHost: Example.test\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n",
      "HEAD /x HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
    ]
    let alphabet: [UInt8] = Array(" \t\r\n:/-?#%\"<>{}\\|^`[]HTPGETa0.,;=@".utf8) + [0, 0x0b, 0x7f, 0x80, 0xff]
    var random = SystemRandomNumberGenerator()
    var plain = 0
    var checked = 0
    let started = ContinuousClock.now
    for round in 0..<3000 where ContinuousClock.now - started < .seconds(20) {
      var bytes = Array(bases[round % bases.count].utf8)
      for _ in 0...(round % 3) {
        let index = Int.random(in: 0..<bytes.count, using: &random)
        bytes[index] = alphabet.randomElement(using: &random) ?? 0
      }
      let text = String(decoding: bytes, as: UTF8.self)
      guard Array(text.utf8) == bytes else { continue }  // not valid UTF-8: skip (the decoder test needs a String)
      if Self.isPlain(Self.checkAgainstDecoder(Self.firstRequest(of: text))) { plain += 1 }
      checked += 1
    }
    #expect(checked > 100)
    #expect(plain > 0, "some mutations stay plain")
  }

  /// The bytes the scan takes as one request: a mutation that makes an empty line early
  /// (`\r\n\r\n` in place of a field's first bytes) turns the text into a request
  /// followed by another, pipelined; the scan rightly takes the first alone, and that is
  /// what must read as the decoder reads it. (Checked whole, such a text failed the test
  /// about once in a few hundred runs: "29 bytes against 53".)
  static func firstRequest(of text: String) -> String {
    let length: Int
    switch scan(text) {
    case .plain(_, let scanned), .bodiless(let scanned): length = scanned
    case .incomplete, .other: return text
    }
    return String(decoding: Array(text.utf8)[0..<min(length, text.utf8.count)], as: UTF8.self)
  }

  @Test func aRequestFollowedByAnotherIsScannedAlone() {
    let text = "HEAD /x HTTP/1.0\r\nHost: h\r\n\r\nnnection: keep-alive\r\n\r\n"
    #expect(Self.firstRequest(of: text) == "HEAD /x HTTP/1.0\r\nHost: h\r\n\r\n")
    #expect(Self.isPlain(Self.checkAgainstDecoder(Self.firstRequest(of: text))))
  }

  /// Requests whose one extra field is drawn from the names llhttp or the fast path treat
  /// specially, with values that flip their meaning: the scan must read each as the
  /// decoder does (keep-alive above all), or leave it to the decoder.
  @Test func specialFieldsNeverDisagreeWithTheDecoder() {
    let names = [
      "Connection", "connection", "Proxy-Connection", "Keep-Alive", "Host", "Content-Length", "Transfer-Encoding",
      "Upgrade", "Expect", "Range", "If-None-Match", "Cache-Control", "Pragma", "Authorization", "TE", "Trailer",
    ]
    let values = ["close", "keep-alive", "Keep-Alive", "upgrade", "0", "chunked", "close, keep-alive", "x", ""]
    var checked = 0
    for version in ["1.0", "1.1"] {
      for name in names {
        for value in values {
          Self.checkAgainstDecoder("GET /s HTTP/\(version)\r\nHost: h\r\n\(name): \(value)\r\n\r\n")
          Self.checkAgainstDecoder(
            "GET /s HTTP/\(version)\r\nHost: h\r\nConnection: close\r\n\(name): \(value)\r\n\r\n")
          checked += 2
        }
      }
    }
    #expect(checked == 2 * names.count * values.count * 2)
  }
}
