import EdgeCDNStore
import NIOCore
import NIOHTTP1
import Synchronization

/// Sits after NIOHTTP1's `HTTPServerPipelineHandler`, which hands over one request at a
/// time and holds the next until the current response's end is written: so answering
/// one request here and passing the next to the async handler keeps responses in
/// request order, whatever the mix.
///
/// A GET or HEAD is held until its end; without a body, the responder may answer it
/// here, else head and end go on to the async path. Anything else passes untouched.
final class ImmediateResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias InboundOut = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  /// Bounds re-entrance: writing a response's end makes the pipelining handler deliver
  /// the next buffered request from inside that write, so a burst of pipelined hits
  /// would otherwise nest one stack frame chain per request.
  static let maxDepth = 8

  private let responder: any ImmediateResponder
  private let shuttingDown: Flag
  private var held: HTTPRequestHead?
  private var memo = ImmediateConnectionMemo()
  private var depth = 0
  /// Set once a response said Connection: close; later requests are dropped, as the
  /// async path drops them when it closes.
  private var closing = false
  /// Sent by the server at graceful shutdown to a connection with no request in the
  /// async path: close now, or once the large responses in flight are written.
  struct CloseWhenWritten: Sendable {}

  private let exchanges: OpenExchanges

  /// The server's limits: a request over them is left to the async path, which refuses it.
  private let maxRequestLineBytes: Int
  private let maxHeaderBytes: Int

  init(
    responder: any ImmediateResponder, shuttingDown: Flag, exchanges: OpenExchanges,
    maxRequestLineBytes: Int, maxHeaderBytes: Int
  ) {
    self.responder = responder
    self.shuttingDown = shuttingDown
    self.exchanges = exchanges
    self.maxRequestLineBytes = maxRequestLineBytes
    self.maxHeaderBytes = maxHeaderBytes
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if closing {
      // Dropped: the connection closes after the response that said so, and owes these
      // requests nothing (or the idle timer would count it as the server's turn for ever
      // while a client that stopped reading holds that response unsent).
      if case .end = unwrapInboundIn(data) { exchanges.responseEnds &+= 1 }
      return
    }
    switch unwrapInboundIn(data) {
    case .head(let head):
      if head.method == .GET || head.method == .HEAD {
        held = head
      } else {
        context.fireChannelRead(data)
      }
    case .body:
      releaseHeld(context: context)
      context.fireChannelRead(data)
    case .end:
      guard let head = held else {
        context.fireChannelRead(data)
        return
      }
      held = nil
      if depth < Self.maxDepth, context.channel.isWritable, !exchanges.declinedInFront,
        RequestRejection.status(of: head, maxRequestLineBytes: maxRequestLineBytes, maxHeaderBytes: maxHeaderBytes)
          == nil,
        let response = responder.immediateResponse(
          to: head, keepAlive: head.isKeepAlive && !shuttingDown.value.load(ordering: .relaxed), connection: &memo)
      {
        depth += 1
        defer { depth -= 1 }
        write(response, context: context)
        return
      }
      // Not answerable here, or the client is not reading (the async path waits for
      // it to, we would buffer): the async path serves it.
      context.fireChannelRead(wrapInboundOut(.head(head)))
      context.fireChannelRead(data)
    }
  }

  private func releaseHeld(context: ChannelHandlerContext) {
    guard let head = held else { return }
    held = nil
    context.fireChannelRead(wrapInboundOut(.head(head)))
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    guard event is CloseWhenWritten else {
      context.fireUserInboundEventTriggered(event)
      return
    }
    exchanges.closeWhenWritten(context: context)
  }

  private func write(_ response: ImmediateResponse, context: ChannelHandlerContext) {
    if !response.keepAlive {
      closing = true
      exchanges.closing = true
    }
    switch response.head {
    case .fields(let head):
      context.write(wrapOutboundOut(.head(head)), promise: nil)
    case .encoded(let bytes):
      context.write(wrapOutboundOut(.head(ResponseEncoder.preEncodedHead)), promise: nil)
      context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
    }
    var bodyBytes = 0
    for chunk in response.body {
      bodyBytes += chunk.readableBytes
      context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
    }
    if let file = response.fileBody, file.length > 0 {
      // sendfile; the lease keeps the descriptor open until NIO is done with the region.
      bodyBytes += file.length
      let lease = file.lease()
      let written = context.eventLoop.makePromise(of: Void.self)
      written.futureResult.whenComplete { _ in lease.end() }
      context.write(wrapOutboundOut(.body(.fileRegion(lease.region))), promise: written)
    }
    if response.keepAlive {
      exchanges.writeLast(wrapOutboundOut(.end(nil)), bodyBytes: bodyBytes, context: context)
    } else {
      let channel = context.channel
      context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
  }
}
