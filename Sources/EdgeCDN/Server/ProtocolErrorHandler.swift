import NIOCore
import NIOHTTP1

/// NIOHTTP1's `HTTPServerProtocolErrorHandler` (400 and close on a malformed request),
/// aware that a response can now end before its request does.
///
/// Request bodies stream, so a server can answer before the body is in (a 413 past the
/// size limit, an origin's early 401), then close. Closing on a half-read request, or a
/// client that then sends garbage, makes the parser fail; NIO's handler would answer that
/// with a second response (a 400) after the first had ended, which corrupts the exchange
/// and trips `HTTPServerPipelineHandler`'s assertion ("Received second response while
/// waiting for first one to complete"). Here the 400 goes out only when no response has
/// answered the request yet. It replaces NIO's handler one for one, so a request costs no
/// extra pipeline hop.
final class ProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias InboundOut = HTTPServerRequestPart
  typealias OutboundIn = HTTPServerResponsePart
  typealias OutboundOut = HTTPServerResponsePart

  /// A response head went out without its end yet.
  private var responseOpen = false
  /// A request head came in without its end yet.
  private var requestOpen = false
  /// The current request was answered (response ended) before its end arrived.
  private var answered = false
  /// A parser error ended the exchange: the channel is closing, and a response the
  /// request's handler still writes (it saw its body fail) must not follow the 400.
  private var failed = false
  private let exchanges: OpenExchanges

  init(exchanges: OpenExchanges) {
    self.exchanges = exchanges
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head:
      requestOpen = true
      answered = false
    case .body: break
    case .end:
      requestOpen = false
      answered = false
    }
    context.fireChannelRead(data)
  }

  func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
    if failed {
      promise?.fail(ChannelError.ioOnClosedChannel)
      return
    }
    switch unwrapOutboundIn(data) {
    case .head(let head) where head.status.code < 200: break
    case .head: responseOpen = true
    case .body: break
    case .end:
      responseOpen = false
      if requestOpen { answered = true }
    }
    context.write(data, promise: promise)
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // As NIO's handler: a parser error is fatal (the decoder closes the channel after it),
    // and the client hears 400 unless a response already started or answered this request.
    if error is HTTPParserError, !failed {
      if !responseOpen, !answered {
        let headers = HTTPHeaders([("Connection", "close"), ("Content-Length", "0")])
        let head = HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
      }
      // A response in progress is cut here too: its end would be a second answer's start.
      failed = true
      exchanges.failed = true
    }
    context.fireErrorCaught(error)
  }
}
