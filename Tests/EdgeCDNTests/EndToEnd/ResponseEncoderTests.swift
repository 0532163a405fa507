import EdgeCDNStore
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// `ResponseEncoder` (pre-encoded heads beside NIOHTTP1's encoder) and `EncodedResponseHead`
/// (a stored head serialised once): the bytes on the wire are what NIOHTTP1 would send.
@Suite struct ResponseEncoderTests {
  /// A server pipeline as `HTTPServer` builds it, on an embedded channel.
  func serverChannel() throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try ResponseEncoder.configureServerPipeline(channel.pipeline.syncOperations)
    return channel
  }

  /// Everything the channel wrote, as text.
  func written(_ channel: EmbeddedChannel) throws -> String {
    var bytes: [UInt8] = []
    while let data = try channel.readOutbound(as: IOData.self) {
      guard case .byteBuffer(let buffer) = data else { continue }
      bytes.append(contentsOf: buffer.readableBytesView)
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// What NIOHTTP1's own encoder writes for a head, without the blank line.
  func nioEncoded(_ head: HTTPResponseHead) throws -> String {
    let channel = EmbeddedChannel(handler: HTTPResponseEncoder())
    try channel.writeOutbound(HTTPServerResponsePart.head(head))
    let text = try written(channel)
    _ = try channel.finish()
    return String(text.dropLast())  // "\r\n" is one Character
  }

  func request(_ channel: EmbeddedChannel, _ text: String) throws -> [HTTPServerRequestPart] {
    try channel.writeInbound(ByteBuffer(string: text))
    var parts: [HTTPServerRequestPart] = []
    while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
    return parts
  }

  @Test func preEncodedBytesPassAsTheyAreAndOrdinaryResponsesAreEncoded() throws {
    let channel = try serverChannel()
    defer { _ = try? channel.finish() }
    _ = try request(channel, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    let raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    channel.write(HTTPServerResponsePart.head(ResponseEncoder.preEncodedHead), promise: nil)
    channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: raw))), promise: nil)
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
    #expect(try written(channel) == raw)
    // The next request's response goes through NIOHTTP1's encoder: chunked without a length.
    _ = try request(channel, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)), promise: nil)
    channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "abc"))), promise: nil)
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
    #expect(try written(channel) == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
  }

  @Test func responseToHEADHasNoBodyAndNoChunkTerminator() throws {
    let channel = try serverChannel()
    defer { _ = try? channel.finish() }
    _ = try request(channel, "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n")
    channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)), promise: nil)
    let body = channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "abc"))))
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
    #expect(throws: NIOHTTPResponseEncoderError.self) { try body.wait() }
    #expect(try written(channel) == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    // The GET after it gets its body.
    _ = try request(channel, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    var headers = HTTPHeaders()
    headers.add(name: "Content-Length", value: "3")
    channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
      .whenComplete { _ in }
    channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "abc"))), promise: nil)
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
    #expect(try written(channel) == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
  }

  @Test func pipelinedRequestsMixingBothKindsAnswerInOrder() throws {
    let channel = try serverChannel()
    defer { _ = try? channel.finish() }
    // Three requests at once: the pipelining handler hands over one at a time.
    let first = try request(
      channel,
      "HEAD /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: x\r\n\r\n")
    #expect(first.count == 2, "head and end of the first request only")
    channel.write(HTTPServerResponsePart.head(ResponseEncoder.preEncodedHead), promise: nil)
    channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "<1>"))), promise: nil)
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
    var parts: [HTTPServerRequestPart] = []
    while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
    #expect(parts.count == 2, "the second request once the first is answered")
    var headers = HTTPHeaders()
    headers.add(name: "Content-Length", value: "3")
    channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
      .whenComplete { _ in }
    channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "<2>"))), promise: nil)
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
    while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
    // The third is a HEAD answered the ordinary way: no body, whatever is written.
    channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
      .whenComplete { _ in }
    channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "<3>"))))
      .whenComplete { _ in }
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
    #expect(
      try written(channel)
        == "<1>HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n<2>HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")
  }

  @Test func encodedHeadIsWhatNIOHTTP1Writes() throws {
    let fields: [CacheMeta.Field] = [
      .init("Content-Type", "text/plain; charset=utf-8"), .init("Content-Length", "5"), .init("Age", "7"),
      .init("ETag", "\"v1\""), .init("x-odd_name!", "a\tb ~ é"), .init("Cache-Control", "max-age=60"),
    ]
    for status: UInt16 in [200, 203, 404, 410, 299] {
      let head = EncodedResponseHead(
        .init(status: status, reason: "ignored", fields: fields), bodySize: 5, facts: .init())
      let bytes = try #require(head.bytes)
      var headers = HTTPHeaders()
      for field in fields where field.name != "Age" { headers.add(name: field.name, value: field.value) }
      let expected = try nioEncoded(
        HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: Int(status)), headers: headers))
      #expect(String(buffer: bytes) == expected, "\(status)")
    }
  }

  @Test func headsNIOHTTP1WouldChangeOrRejectAreNotEncoded() {
    func encodable(status: UInt16 = 200, _ fields: [(String, String)], bodySize: Int = 2) -> Bool {
      EncodedResponseHead(
        .init(status: status, fields: fields.map { .init($0.0, $0.1) }), bodySize: bodySize, facts: .init()
      ).bytes
        != nil
    }
    #expect(encodable([("Content-Length", "2")]))
    #expect(encodable([]), "no length: the stored body's is added")
    #expect(
      EncodedResponseHead(.init(status: 200, fields: [.init("X-A", "1")]), bodySize: 7, facts: .init()).bytes.map {
        String(buffer: $0)
      }
        == "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 7\r\n")
    #expect(!encodable([("Content-Length", "3")]), "a length that is not the body's")
    #expect(!encodable([("Content-Length", "2"), ("content-length", "2")]))
    #expect(!encodable([("Content-Length", "2"), ("Transfer-Encoding", "chunked")]))
    #expect(!encodable([("Content-Length", "2"), ("Connection", "close")]))
    #expect(
      !encodable(status: 204, [("Content-Length", "0")], bodySize: 0), "no body allowed: NIOHTTP1 drops the length")
    #expect(!encodable([("Content-Length", "2"), ("X-Bad", "a\r\nInjected: yes")]))
    #expect(!encodable([("Content-Length", "2"), ("Bad Name", "x")]))
    #expect(!encodable([("Content-Length", "2"), ("", "x")]))
  }
}
