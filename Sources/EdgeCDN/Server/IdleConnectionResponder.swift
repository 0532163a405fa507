import NIOCore
import NIOHTTP1
import Synchronization

/// Answers a request on the event loop ahead of the pipelining handler, when the
/// connection has nothing else in flight, with the response's bytes as they will go on
/// the wire.
///
/// Why: behind `HTTPServerPipelineHandler` (`ImmediateResponseHandler`), a 1 KiB hit was
/// four response parts (marker head, bytes, end) each boxed in a `NIOAny` and passed
/// through five handlers, plus the request's head and end through the same handlers
/// inbound: about a third of a hit's CPU. Here the request stops after the decoder and the
/// response is one `IOData` write that goes straight to the socket.
///
/// Order stays right because a request is taken only when every earlier one has been
/// answered completely (`OpenExchanges.isIdle`): nothing is ahead of it. Everything else
/// (a request while another is in flight, with a body, one the responder cannot answer as
/// pre-encoded bytes) goes on unchanged to the handlers behind, where
/// `ImmediateResponseHandler` and the async path answer it in order. The pipelining
/// handler never sees the requests answered here, so its bookkeeping stays idle.
final class IdleConnectionResponder: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias InboundOut = HTTPServerRequestPart
  typealias OutboundOut = IOData

  private let responder: any ImmediateResponder
  private let shuttingDown: Flag
  private let exchanges: OpenExchanges
  private var held: HTTPRequestHead?
  private var memo = ImmediateConnectionMemo()
  /// A response from here said Connection: close, or the parser failed: later requests
  /// are dropped, as the handlers behind drop them when they close.
  private var closing = false
  /// Responses written since the last flush: flushed once per read, so pipelined hits
  /// share one syscall.
  private var unflushed = false
  /// Something went on to the handlers behind since the last read completed. Why: when a
  /// read brought only requests answered here, its completion is not passed on; it would
  /// walk five handlers to the async channel's, which would find nothing to deliver.
  private var forwarded = false
  /// As `ImmediateResponseHandler`'s: large responses not yet handed whole to the socket.
  private var largeWritesInFlight = 0
  private var closeWhenWritten = false

  init(responder: any ImmediateResponder, shuttingDown: Flag, exchanges: OpenExchanges) {
    self.responder = responder
    self.shuttingDown = shuttingDown
    self.exchanges = exchanges
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if closing { return }
    switch unwrapInboundIn(data) {
    case .head(let head):
      if head.method == .GET || head.method == .HEAD, exchanges.isIdle {
        held = head
      } else {
        forward(context, data)
      }
    case .body:
      releaseHeld(context: context)
      forward(context, data)
    case .end:
      guard let head = held else {
        forward(context, data)
        return
      }
      held = nil
      if exchanges.isIdle, context.channel.isWritable,
        let response = responder.encodedImmediateResponse(
          to: head, keepAlive: head.isKeepAlive && !shuttingDown.value.load(ordering: .relaxed), connection: &memo),
        case .encoded(let bytes) = response.head
      {
        write(response, head: bytes, context: context)
        return
      }
      forward(context, wrapInboundOut(.head(head)))
      forward(context, data)
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    if unflushed {
      unflushed = false
      context.flush()
    }
    guard forwarded else { return }
    forwarded = false
    context.fireChannelReadComplete()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // A parser error ends the connection (the handlers behind answer 400 and close).
    if error is HTTPParserError {
      closing = true
      releaseHeld(context: context)
    }
    context.fireErrorCaught(error)
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    guard event is ImmediateResponseHandler.CloseWhenWritten, largeWritesInFlight > 0 else {
      context.fireUserInboundEventTriggered(event)
      return
    }
    // Passed on (to `ImmediateResponseHandler`, which closes) once they are written.
    closeWhenWritten = true
  }

  private func forward(_ context: ChannelHandlerContext, _ data: NIOAny) {
    forwarded = true
    context.fireChannelRead(data)
  }

  private func releaseHeld(context: ChannelHandlerContext) {
    guard let head = held else { return }
    held = nil
    forward(context, wrapInboundOut(.head(head)))
  }

  private func write(_ response: ImmediateResponse, head: ByteBuffer, context: ChannelHandlerContext) {
    var last = head
    var bodyBytes = 0
    for chunk in response.body {
      context.write(wrapOutboundOut(.byteBuffer(last)), promise: nil)
      bodyBytes += chunk.readableBytes
      last = chunk
    }
    if !response.keepAlive {
      closing = true
      exchanges.closing = true
      let channel = context.channel
      context.writeAndFlush(wrapOutboundOut(.byteBuffer(last))).whenComplete { _ in channel.close(promise: nil) }
    } else if bodyBytes >= ImmediateResponseHandler.trackedBodyBytes {
      largeWritesInFlight += 1
      context.writeAndFlush(wrapOutboundOut(.byteBuffer(last))).assumeIsolated().whenComplete { [self] _ in
        largeWritesInFlight -= 1
        if closeWhenWritten, largeWritesInFlight == 0 {
          closeWhenWritten = false
          context.fireUserInboundEventTriggered(ImmediateResponseHandler.CloseWhenWritten())
        }
      }
    } else {
      context.write(wrapOutboundOut(.byteBuffer(last)), promise: nil)
      unflushed = true
    }
  }
}
