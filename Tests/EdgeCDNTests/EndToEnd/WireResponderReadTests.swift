import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// `WireResponder` issues the connection's reads (`autoRead` is off): after a read answered
/// wholly in front, from its own place; after anything passed on, or while an exchange is
/// open behind, from the pipeline's tail, where the pipelining handler and the async
/// channel's handler hold it for backpressure.
@Suite struct WireResponderReadTests {
  typealias Stub = WireResponderTests.Stub

  /// Counts the reads that pass it; holds them while `holding` (as the async channel's
  /// handler does with a full buffer) and lets the held one go on `release`.
  final class ReadProbe: ChannelOutboundHandler {
    typealias OutboundIn = NIOAny
    var reads = 0
    var holding = false
    private var held = false
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func read(context: ChannelHandlerContext) {
      reads += 1
      if holding {
        held = true
      } else {
        context.read()
      }
    }

    func release() {
      holding = false
      if held {
        held = false
        context?.read()
      }
    }
  }

  struct Pipeline {
    let channel: EmbeddedChannel
    let exchanges: OpenExchanges
    /// In front of everything: the reads that reach the socket.
    let socket: ReadProbe
    /// Behind everything, where the async channel's handler sits: the reads from the tail.
    let tail: ReadProbe
  }

  func pipeline() throws -> Pipeline {
    let channel = EmbeddedChannel()
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    let exchanges = OpenExchanges()
    let flag = Flag()
    let socket = ReadProbe()
    try channel.pipeline.syncOperations.addHandler(socket)
    try ResponseEncoder.configureServerPipeline(
      channel.pipeline.syncOperations, exchanges: exchanges,
      front: WireResponder(
        responder: Stub(), shuttingDown: flag, exchanges: exchanges, maxRequestLineBytes: 1 << 10,
        maxHeaderBytes: 1 << 10))
    try channel.pipeline.syncOperations.addHandler(
      ImmediateResponseHandler(
        responder: Stub(), shuttingDown: flag, exchanges: exchanges, maxRequestLineBytes: 1 << 10,
        maxHeaderBytes: 1 << 10))
    let tail = ReadProbe()
    try channel.pipeline.syncOperations.addHandler(tail)
    return Pipeline(channel: channel, exchanges: exchanges, socket: socket, tail: tail)
  }

  func respond(_ channel: EmbeddedChannel) throws {
    var headers = HTTPHeaders()
    headers.add(name: "Content-Length", value: "2")
    channel.write(
      HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)), promise: nil)
    channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "ok"))), promise: nil)
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
  }

  func drain(_ channel: EmbeddedChannel) throws {
    while try channel.readOutbound(as: IOData.self) != nil {}
    while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
  }

  /// The reads each probe saw since `since`, as (socket, tail).
  func reads(_ p: Pipeline, since: (Int, Int)) -> (socket: Int, tail: Int) {
    (p.socket.reads - since.0, p.tail.reads - since.1)
  }

  func mark(_ p: Pipeline) -> (Int, Int) { (p.socket.reads, p.tail.reads) }

  @Test func theFirstReadIsIssuedWhenTheHandlerArrivesOnAnOpenConnection() throws {
    let p = try pipeline()
    defer { _ = try? p.channel.finish() }
    #expect(p.socket.reads == 1)
  }

  @Test func aReadAnsweredInFrontReadsOnFromTheFront() throws {
    let p = try pipeline()
    defer { _ = try? p.channel.finish() }
    let before = mark(p)
    try p.channel.writeInbound(
      ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: t\r\n\r\nGET /fast2 HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(reads(p, since: before) == (1, 0))
  }

  @Test func aMissReadsFromTheTailAndThePipeliningHandlerHoldsItUntilTheResponseEnds() throws {
    let p = try pipeline()
    defer { _ = try? p.channel.finish() }
    var before = mark(p)
    try p.channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(reads(p, since: before) == (0, 1), "held: a response is open")
    before = mark(p)
    try respond(p.channel)
    #expect(reads(p, since: before) == (1, 0), "let go when the response ends")
    try drain(p.channel)
    before = mark(p)
    try p.channel.writeInbound(ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(reads(p, since: before) == (1, 0), "idle again: from the front")
  }

  @Test func aHeadInPiecesBehindAnOpenResponseReadsFromTheTail() throws {
    let p = try pipeline()
    defer { _ = try? p.channel.finish() }
    try p.channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /fa"))
    var before = mark(p)
    try p.channel.writeInbound(ByteBuffer(string: "st HTTP/1.1\r\nHo"))
    #expect(reads(p, since: before) == (0, 1), "nothing passed on, but a response is open: held")
    before = mark(p)
    try respond(p.channel)
    #expect(reads(p, since: before) == (1, 0))
    try drain(p.channel)
    before = mark(p)
    try p.channel.writeInbound(ByteBuffer(string: "st: t\r\n\r\n"))
    #expect(try p.channel.readOutbound(as: IOData.self) != nil, "the rest answered in front")
    #expect(reads(p, since: before) == (1, 0))
  }

  @Test func aHeadInPiecesOnAnIdleConnectionReadsFromTheFront() throws {
    let p = try pipeline()
    defer { _ = try? p.channel.finish() }
    let before = mark(p)
    try p.channel.writeInbound(ByteBuffer(string: "GET /fa"))
    try p.channel.writeInbound(ByteBuffer(string: "st HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(reads(p, since: before) == (2, 0))
  }

  @Test func aFullAsyncBufferHoldsTheReadAfterARequestPassedOn() throws {
    let p = try pipeline()
    defer { _ = try? p.channel.finish() }
    p.tail.holding = true
    var before = mark(p)
    try p.channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"))
    try respond(p.channel)
    #expect(reads(p, since: before) == (0, 1), "held at the tail even once the response ended")
    before = mark(p)
    p.tail.release()
    #expect(reads(p, since: before) == (1, 0))
  }

  @Test func onceTheDecoderHasTheInputEveryReadIsFromTheTail() throws {
    let p = try pipeline()
    defer { _ = try? p.channel.finish() }
    try p.channel.writeInbound(ByteBuffer(string: "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab"))
    try respond(p.channel)
    try drain(p.channel)
    let before = mark(p)
    try p.channel.writeInbound(ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(try p.channel.readOutbound(as: IOData.self) != nil, "a hit is still answered (behind)")
    #expect(reads(p, since: before) == (1, 1))
  }

  @Test func afterAResponseThatClosesReadsAreFromTheTail() throws {
    let p = try pipeline()
    defer { _ = try? p.channel.finish() }
    let before = mark(p)
    try p.channel.writeInbound(ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
    #expect(p.exchanges.closing)
    #expect(reads(p, since: before).tail == 1)
  }

  /// On the connections it fronts, `WireResponder` runs the idle timer: writes from the
  /// handlers behind count as activity as much as reads and its own answers do.
  @Test func theIdleTimerSeesWritesFromBehindAndClosesOnceQuiet() throws {
    let channel = EmbeddedChannel()
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    defer { _ = try? channel.finish() }
    let exchanges = OpenExchanges()
    try ResponseEncoder.configureServerPipeline(
      channel.pipeline.syncOperations, exchanges: exchanges,
      front: WireResponder(
        responder: Stub(), shuttingDown: Flag(), exchanges: exchanges, maxRequestLineBytes: 1 << 10,
        maxHeaderBytes: 1 << 10, idleTimeout: .seconds(4)))
    let loop = channel.embeddedEventLoop
    try channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"))
    var headers = HTTPHeaders()
    headers.add(name: "Content-Length", value: "7")
    channel.write(
      HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)), promise: nil)
    for _ in 0..<7 {
      loop.advanceTime(by: .seconds(1))
      try channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "x")))).wait()
    }
    #expect(channel.isActive, "a body written from behind, a byte a second, for longer than the timeout")
    try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
    loop.advanceTime(by: .seconds(3))
    #expect(channel.isActive)
    loop.advanceTime(by: .seconds(3))
    #expect(!channel.isActive, "closed within a quarter past the timeout of quiet")
  }
}
