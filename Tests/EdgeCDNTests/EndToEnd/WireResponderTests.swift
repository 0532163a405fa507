import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// `WireResponder`: a request on a connection with nothing in flight is answered from its
/// bytes, in front of the decoder, as one write of the responder's bytes; anything else
/// passes on to the decoder whole, and responses stay in request order.
@Suite struct WireResponderTests {
  /// Answers `/fast*` with fixed bytes (a head without body for HEAD); `/fields` only as
  /// fields (so only `immediateResponse` answers it); everything else is declined.
  struct Stub: ImmediateResponder {
    /// The requests `immediateResponse` was asked about, behind the pipelining handler.
    let askedBehind = NIOLockedValueBox<[String]>([])

    static func bytes(_ uri: String, head: Bool) -> String {
      let body = "<\(uri)>"
      return "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + (head ? "" : body)
    }

    func immediateResponse(
      to head: HTTPRequestHead, keepAlive: Bool, connection: inout ImmediateConnectionMemo
    ) -> ImmediateResponse? {
      askedBehind.withLockedValue { $0.append(head.uri) }
      if head.uri == "/fields" {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "3")
        return ImmediateResponse(
          head: HTTPResponseHead(version: .http1_1, status: .ok, headers: headers),
          body: [ByteBuffer(string: "fld")], keepAlive: keepAlive)
      }
      return answer(head.uri, isHEAD: head.method == .HEAD, keepAlive: keepAlive)
    }

    func wireResponse(
      to request: WireRequest, keepAlive: Bool, connection: inout ImmediateConnectionMemo
    ) -> ImmediateResponse? {
      if request.uri == "/fields" { connection.answerableBehind = true }
      return answer(request.uri, isHEAD: request.isHEAD, keepAlive: keepAlive)
    }

    func answer(_ uri: String, isHEAD: Bool, keepAlive: Bool) -> ImmediateResponse? {
      guard uri.hasPrefix("/fast") else { return nil }
      return ImmediateResponse(
        encoded: ByteBuffer(string: Self.bytes(uri, head: isHEAD)), body: [], keepAlive: keepAlive)
    }
  }

  /// The server's pipeline as `HTTPServer` builds it with a responder.
  func serverChannel(
    behind: Bool = true, stub: Stub = Stub(), shuttingDown flag: Flag = Flag()
  ) throws -> (EmbeddedChannel, OpenExchanges) {
    let channel = EmbeddedChannel()
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    let exchanges = OpenExchanges()
    try ResponseEncoder.configureServerPipeline(
      channel.pipeline.syncOperations, exchanges: exchanges,
      front: WireResponder(
        responder: stub, shuttingDown: flag, exchanges: exchanges, maxRequestLineBytes: 1 << 10,
        maxHeaderBytes: 1 << 10))
    if behind {
      try channel.pipeline.syncOperations.addHandler(
        ImmediateResponseHandler(
          responder: stub, shuttingDown: flag, exchanges: exchanges, maxRequestLineBytes: 1 << 10,
          maxHeaderBytes: 1 << 10))
    }
    return (channel, exchanges)
  }

  /// Each flushed write, as text.
  func writes(_ channel: EmbeddedChannel) throws -> [String] {
    var texts: [String] = []
    while let data = try channel.readOutbound(as: IOData.self) {
      guard case .byteBuffer(let buffer) = data else { continue }
      texts.append(String(buffer: buffer))
    }
    return texts
  }

  func inbound(_ channel: EmbeddedChannel) throws -> [HTTPServerRequestPart] {
    var parts: [HTTPServerRequestPart] = []
    while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
    return parts
  }

  func respond(_ channel: EmbeddedChannel, _ body: String) throws {
    var headers = HTTPHeaders()
    headers.add(name: "Content-Length", value: "\(body.utf8.count)")
    channel.write(
      HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)), promise: nil)
    channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil)
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
  }

  @Test func anIdleConnectionsHitIsOneWriteOfItsBytes() throws {
    let (channel, exchanges) = try serverChannel()
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"))
    #expect(try writes(channel) == [Stub.bytes("/fast", head: false)])
    #expect(try inbound(channel).isEmpty, "nothing reaches the async path")
    #expect(exchanges.open == 0)
    try channel.writeInbound(ByteBuffer(string: "HEAD /fast2 HTTP/1.1\r\nHost: x\r\n\r\n"))
    #expect(try writes(channel) == [Stub.bytes("/fast2", head: true)])
    #expect(channel.isActive)
  }

  @Test func pipelinedHitsShareOneFlushAndAMissKeepsTheOrder() throws {
    let (channel, exchanges) = try serverChannel()
    defer { _ = try? channel.finish() }
    try channel.writeInbound(
      ByteBuffer(
        string:
          "GET /fast1 HTTP/1.1\r\nHost: t\r\n\r\nGET /fast2 HTTP/1.1\r\nHost: t\r\n\r\nGET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
          + "GET /fast3 HTTP/1.1\r\nHost: t\r\n\r\nHEAD /fast4 HTTP/1.1\r\nHost: t\r\n\r\nGET /fields HTTP/1.1\r\nHost: t\r\n\r\n"
      ))
    #expect(try writes(channel) == [Stub.bytes("/fast1", head: false), Stub.bytes("/fast2", head: false)])
    let slow = try inbound(channel)
    #expect(slow.count == 2, "the miss's head and end, and nothing after it yet")
    if case .head(let head) = slow.first { #expect(head.uri == "/slow") } else { Issue.record("no head first") }
    #expect(exchanges.open == 4, "the miss and the three requests held behind it")
    try respond(channel, "<slow>")
    // The requests behind the miss are answered in order by the handler behind the
    // pipelining handler, the last one through NIOHTTP1's encoder.
    #expect(
      try writes(channel).joined()
        == "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<slow>" + Stub.bytes("/fast3", head: false)
        + Stub.bytes("/fast4", head: true) + "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nfld")
    #expect(try inbound(channel).isEmpty)
    #expect(exchanges.open == 0)
    // Idle again: the next hit is answered in front.
    try channel.writeInbound(ByteBuffer(string: "GET /fast5 HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(try writes(channel) == [Stub.bytes("/fast5", head: false)])
  }

  @Test func aRequestWithABodyPassesOn() throws {
    let (channel, exchanges) = try serverChannel()
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab"))
    let parts = try inbound(channel)
    #expect(parts.count == 3, "head, body, end")
    #expect(try writes(channel).isEmpty)
    #expect(exchanges.open == 1)
    try respond(channel, "ok")
    #expect(exchanges.open == 0)
  }

  @Test func connectionCloseEndsTheConnectionAfterTheResponse() throws {
    let (channel, exchanges) = try serverChannel()
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
    #expect(try writes(channel) == [Stub.bytes("/fast", head: false)])
    #expect(try inbound(channel).isEmpty)
    #expect(exchanges.closing)
    channel.embeddedEventLoop.run()
    #expect(!channel.isActive)
  }

  @Test func afterAResponseThatClosesNothingIsAnsweredInFront() throws {
    let (channel, exchanges) = try serverChannel(behind: false)
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"))
    _ = try inbound(channel)
    var headers = HTTPHeaders()
    headers.add(name: "Content-Length", value: "0")
    headers.add(name: "Connection", value: "close")
    channel.write(
      HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)), promise: nil)
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
    #expect(exchanges.closing && exchanges.open == 0)
    _ = try writes(channel)
    try channel.writeInbound(ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(try writes(channel).isEmpty, "not answered ahead of the server's close")
    #expect(try inbound(channel).count == 2, "left to the handlers behind")
  }

  @Test func aMalformedRequestAfterAHitGets400() throws {
    let (channel, _) = try serverChannel()
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(try writes(channel) == [Stub.bytes("/fast", head: false)])
    #expect(throws: (any Error).self) { try channel.writeInbound(ByteBuffer(string: "NOT HTTP\r\n\r\n")) }
    let text = try writes(channel).joined()
    #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
  }

  /// Counts the read completions that reach the end of the pipeline.
  final class ReadCompletions: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    var count = 0

    func channelReadComplete(context: ChannelHandlerContext) {
      count += 1
      context.fireChannelReadComplete()
    }
  }

  @Test func aReadAnsweredWhollyInFrontIsNotCompletedBehind() throws {
    let (channel, _) = try serverChannel(behind: false)
    defer { _ = try? channel.finish() }
    let completions = ReadCompletions()
    try channel.pipeline.syncOperations.addHandler(completions)
    try channel.writeInbound(
      ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: t\r\n\r\nGET /fast2 HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(try writes(channel).count == 2)
    #expect(completions.count == 0)
    try channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(try inbound(channel).count == 2)
    #expect(completions.count == 1, "the async path hears of a read that brought it a request")
  }

  @Test func aRequestArrivingByteByByteIsAnsweredOnce() throws {
    let (channel, _) = try serverChannel()
    defer { _ = try? channel.finish() }
    let text = "GET /fast1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /fast2 HTTP/1.1\r\nHost: t\r\n\r\n"
    var written: [String] = []
    for byte in text.utf8 {
      try channel.writeInbound(ByteBuffer(bytes: [byte]))
      written += try writes(channel)
    }
    #expect(written == [Stub.bytes("/fast1", head: false), Stub.bytes("/fast2", head: true)])
    #expect(try inbound(channel).isEmpty)
  }

  @Test func afterARequestWithABodyTheDecoderHasTheRestAndHitsStillAnswer() throws {
    let (channel, exchanges) = try serverChannel()
    defer { _ = try? channel.finish() }
    // The body's bytes look like a request: only the decoder knows they are a body.
    let body = "GET /fast9 HTTP/1.1\r\nHost: t\r\n\r\n"
    try channel.writeInbound(
      ByteBuffer(
        string:
          "PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)GET /fast1 HTTP/1.1\r\nHost: t\r\n\r\n"
      ))
    let parts = try inbound(channel)
    #expect(parts.count == 3, "the upload's head, body and end")
    #expect(try writes(channel).isEmpty)
    try respond(channel, "ok")
    #expect(
      try writes(channel).joined()
        == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + Stub.bytes("/fast1", head: false),
      "the hit after it answered behind the pipelining handler, in order")
    #expect(exchanges.open == 0)
  }

  @Test func aConditionalRequestGoesWholeToTheDecoderAndTheNextIsAnsweredInFront() throws {
    let (channel, _) = try serverChannel(behind: false)
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "GET /fast1 HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"e\"\r\n\r\n"))
    let parts = try inbound(channel)
    #expect(parts.count == 2)
    if case .head(let head) = parts.first { #expect(head.headers["if-none-match"] == ["\"e\""]) }
    try respond(channel, "304")
    _ = try writes(channel)
    try channel.writeInbound(ByteBuffer(string: "GET /fast2 HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(try writes(channel) == [Stub.bytes("/fast2", head: false)])
  }

  /// A request declined in front is not asked about again behind, unless the responder
  /// said it would answer it there (a hit it answers only as fields).
  @Test func aDeclinedRequestIsAskedOnceUnlessAnswerableBehind() throws {
    let stub = Stub()
    let (channel, _) = try serverChannel(stub: stub)
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "GET /miss HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(try inbound(channel).count == 2, "the miss goes on to the async path")
    #expect(stub.askedBehind.withLockedValue { $0 }.isEmpty)
    try respond(channel, "m")
    _ = try writes(channel)
    try channel.writeInbound(ByteBuffer(string: "GET /fields HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(stub.askedBehind.withLockedValue { $0 } == ["/fields"])
    #expect(try writes(channel).joined() == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nfld")
    #expect(try inbound(channel).isEmpty)
  }

  /// A client that is not reading (the channel not writable) gets nothing written in
  /// front: the request goes on, and the handlers behind (which wait for it) serve it.
  @Test func aClientNotReadingIsLeftToTheHandlersBehind() throws {
    let (channel, _) = try serverChannel()
    defer { _ = try? channel.finish() }
    channel.isWritable = false
    try channel.writeInbound(ByteBuffer(string: "GET /fast1 HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(try writes(channel).isEmpty)
    #expect(try inbound(channel).count == 2, "head and end, for the async path")
  }

  /// A declined request that says Connection: close ends the exchange: a hit pipelined
  /// after it in the same read is not answered in front, nor at all once the server closes.
  @Test func nothingIsAnsweredInFrontAfterARequestThatCloses() throws {
    let (channel, exchanges) = try serverChannel()
    defer { _ = try? channel.finish() }
    try channel.writeInbound(
      ByteBuffer(
        string: "GET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /fast1 HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(try writes(channel).isEmpty)
    #expect(exchanges.closing)
    #expect(try inbound(channel).count == 2, "the closing request only; the hit behind it waits")
  }

  /// Once a request the scan does not take (here a malformed field line) hands the input
  /// to the decoder, nothing after it is answered in front: the decoder refuses it with
  /// 400, and the well-formed hit behind it in the same read is never answered.
  @Test func afterInputTheScanDoesNotTakeTheDecoderHasEverything() throws {
    let (channel, _) = try serverChannel()
    defer { _ = try? channel.finish() }
    #expect(throws: (any Error).self) {
      try channel.writeInbound(
        ByteBuffer(
          string:
            "GET /fast1 HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\nBad Header Line\r\n\r\nGET /fast2 HTTP/1.1\r\nHost: t\r\n\r\n"
        ))
    }
    let text = try writes(channel).joined()
    #expect(text.hasPrefix(Stub.bytes("/fast1", head: false) + "HTTP/1.1 400 Bad Request\r\n"))
    #expect(!text.contains("/fast2"))
  }
}
