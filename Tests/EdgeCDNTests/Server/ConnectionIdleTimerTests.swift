import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

@testable import EdgeCDN

/// `ConnectionIdleTimer` counts only the client's turns as idleness: waiting for a request,
/// for the rest of one, or for the client to take a response. While a whole request waits
/// for its response and the socket takes more, the turn is the server's.
@Suite struct ConnectionIdleTimerTests {
  /// Where the timer runs: `WireResponder` in front of the decoder, or
  /// `ConnectionIdleHandler` when there is no event-loop responder.
  enum Front: CaseIterable, CustomStringConvertible {
    case wireResponder, idleHandler
    var description: String { self == .wireResponder ? "WireResponder" : "ConnectionIdleHandler" }
  }

  static let timeout = TimeAmount.seconds(4)

  func pipeline(_ front: Front) throws -> (EmbeddedChannel, OpenExchanges) {
    let channel = EmbeddedChannel()
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    let exchanges = OpenExchanges()
    switch front {
    case .wireResponder:
      try ResponseEncoder.configureServerPipeline(
        channel.pipeline.syncOperations, exchanges: exchanges,
        front: WireResponder(
          responder: WireResponderTests.Stub(), shuttingDown: Flag(), exchanges: exchanges,
          maxRequestLineBytes: 1 << 10, maxHeaderBytes: 1 << 10, idleTimeout: Self.timeout))
    case .idleHandler:
      try channel.pipeline.syncOperations.addHandler(ConnectionIdleHandler(timeout: Self.timeout, exchanges: exchanges))
      try ResponseEncoder.configureServerPipeline(channel.pipeline.syncOperations, exchanges: exchanges)
    }
    return (channel, exchanges)
  }

  func respond(_ channel: EmbeddedChannel, body: String) throws {
    try WireResponderTests().respond(channel, body)
  }

  /// A slow origin, a cache fill or a starved task pool: no read and no write for three
  /// timeouts, and the client, which has sent its whole request, keeps its connection.
  /// Once the response has ended, the quiet is the client's again.
  @Test(arguments: Front.allCases)
  func aRequestWaitingForItsResponseIsNotIdle(front: Front) throws {
    let (channel, exchanges) = try pipeline(front)
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(exchanges.owesResponse)
    channel.embeddedEventLoop.advanceTime(by: .seconds(12))
    #expect(channel.isActive, "closed while the server owed a response")
    try respond(channel, body: "late")
    #expect(!exchanges.owesResponse)
    channel.embeddedEventLoop.advanceTime(by: .seconds(3))
    #expect(channel.isActive)
    channel.embeddedEventLoop.advanceTime(by: .seconds(3))
    #expect(!channel.isActive, "a quiet keep-alive connection is closed a quarter past the timeout")
  }

  /// A client that takes nothing of its response: the socket stops taking writes, the
  /// response is owed but the turn is the client's (nginx's `send_timeout`).
  @Test(arguments: Front.allCases)
  func aClientThatStopsReadingIsClosedWhileItsResponseIsOwed(front: Front) throws {
    let (channel, exchanges) = try pipeline(front)
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"))
    channel.isWritable = false
    channel.embeddedEventLoop.advanceTime(by: .seconds(3))
    #expect(channel.isActive)
    channel.embeddedEventLoop.advanceTime(by: .seconds(3))
    #expect(exchanges.owesResponse)
    #expect(!channel.isActive, "a client that does not read is closed after the timeout")
  }

  /// A request whose body stops coming is the client's turn (`client_body_timeout`), and
  /// so is one whose head stops midway (`client_header_timeout`).
  @Test(arguments: Front.allCases)
  func aRequestThatStopsComingIsIdle(front: Front) throws {
    for partial in [
      "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
      "GET /half HTTP/1.1\r\nHost: t\r\n",
    ] {
      let (channel, exchanges) = try pipeline(front)
      defer { _ = try? channel.finish() }
      try channel.writeInbound(ByteBuffer(string: partial))
      #expect(!exchanges.owesResponse)
      channel.embeddedEventLoop.advanceTime(by: .seconds(6))
      #expect(!channel.isActive, "\(partial.debugDescription) then nothing: closed after the timeout")
    }
  }

  /// A response that ends before its request's body has all arrived (an early 413 or
  /// error) leaves the client's part undone: its quiet still counts.
  @Test(arguments: Front.allCases)
  func aResponseEndedBeforeItsRequestBodyLeavesTheTurnToTheClient(front: Front) throws {
    let (channel, exchanges) = try pipeline(front)
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"))
    try respond(channel, body: "early")
    #expect(!exchanges.owesResponse)
    channel.embeddedEventLoop.advanceTime(by: .seconds(6))
    #expect(!channel.isActive)
  }

  /// Requests pipelined after one answered with a closing response (the server is shutting
  /// down) are dropped unanswered: they are owed nothing. Counted as owed, a client that
  /// stopped reading the closing response (its flush, and so the close, never completes)
  /// would hold the connection for ever. (After a request that itself says
  /// `Connection: close`, the decoder takes nothing more.)
  @Test func requestsDroppedAfterAClosingResponseAreNotOwed() throws {
    let shuttingDown = Flag()
    let (channel, exchanges) = try WireResponderTests().serverChannel(shuttingDown: shuttingDown)
    defer { _ = try? channel.finish() }
    try channel.writeInbound(
      ByteBuffer(
        string: "GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /fast HTTP/1.1\r\nHost: t\r\n\r\n"
          + "GET /fast-too HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(exchanges.owesResponse)
    // /slow is answered from behind; /fast then closes (the server is shutting down), and
    // /fast-too is dropped.
    shuttingDown.value.store(true, ordering: .relaxed)
    try respond(channel, body: "slow")
    #expect(exchanges.closing)
    #expect(exchanges.requestEnds == 3, "every request was decoded")
    #expect(!exchanges.owesResponse, "\(exchanges.requestEnds) requests, \(exchanges.responseEnds) answered or dropped")
  }

  /// The body's end after an early response does not make the server owe one more.
  @Test func aBodyEndingAfterAnEarlyResponseOwesNothing() throws {
    let (channel, exchanges) = try pipeline(.wireResponder)
    defer { _ = try? channel.finish() }
    try channel.writeInbound(ByteBuffer(string: "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n"))
    try respond(channel, body: "early")
    try channel.writeInbound(ByteBuffer(string: "abc"))
    #expect(!exchanges.owesResponse)
    try channel.writeInbound(ByteBuffer(string: "GET /next HTTP/1.1\r\nHost: t\r\n\r\n"))
    #expect(exchanges.owesResponse)
  }
}
