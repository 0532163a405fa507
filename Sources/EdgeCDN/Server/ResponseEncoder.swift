import NIOCore
import NIOHTTP1

/// NIOHTTP1's response encoder, plus responses whose head arrives already serialised.
///
/// Why: a fresh hit's head is its stored fields, serialised once per stored version
/// (`EncodedResponseHead`); encoding them again for every request through HTTPHeaders,
/// NIOHTTP1's header validator and encoder was about a sixth of a hit's CPU. The
/// pipelining handler above still needs every response as head, body parts and end, so a
/// pre-encoded response is `preEncodedHead` (a marker: nothing is written for it), its
/// bytes as body parts, written as they are, then an end.
///
/// Every other response goes to an `HTTPResponseEncoder` this handler owns. NIOHTTP1
/// pairs its encoder with the request decoder to learn which responses answer HEAD; an
/// encoder of our own cannot be paired, so this handler sees the decoded request heads
/// itself (it sits between the decoder and the pipelining handler) and, as the paired
/// encoder does, sends no body and no chunked terminator after the head of a response to
/// HEAD or CONNECT.
final class ResponseEncoder: ChannelDuplexHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias InboundOut = HTTPServerRequestPart
  typealias OutboundIn = HTTPServerResponsePart
  typealias OutboundOut = IOData

  /// Marks a response whose body parts carry its serialised head (and possibly body).
  /// HTTP/0.0 and status 0 never come from anywhere else.
  static let preEncodedHead = HTTPResponseHead(
    version: HTTPVersion(major: 0, minor: 0), status: .custom(code: 0, reasonPhrase: "pre-encoded"))

  private enum Mode {
    case encoding, preEncoded, bodiless
  }

  private let encoder = HTTPResponseEncoder()
  /// Methods of the requests not yet answered, in order.
  private var methods = CircularBuffer<HTTPMethod>(initialCapacity: 4)
  private var mode = Mode.encoding
  private let exchanges: OpenExchanges

  init(exchanges: OpenExchanges) {
    self.exchanges = exchanges
  }

  /// The server's HTTP/1.1 handlers, as `configureHTTPServerPipeline` adds them (request
  /// decoder, pipelining, header validation, protocol errors) with this encoder.
  /// `front`, when given, sits in front of the decoder (`WireResponder`).
  static func configureServerPipeline(
    _ pipeline: ChannelPipeline.SynchronousOperations, exchanges: OpenExchanges = OpenExchanges(),
    front: (any ChannelHandler)? = nil
  ) throws {
    if let front { try pipeline.addHandler(front) }
    try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
    try pipeline.addHandler(ResponseEncoder(exchanges: exchanges))
    try pipeline.addHandler(HTTPServerPipelineHandler())
    try pipeline.addHandler(NIOHTTPResponseHeadersValidator())
    try pipeline.addHandler(ProtocolErrorHandler(exchanges: exchanges))
  }

  static func isPreEncoded(_ head: HTTPResponseHead) -> Bool {
    head.version.major == 0 && head.status.code == 0
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head):
      methods.append(head.method)
      exchanges.open += 1
      if !head.isKeepAlive { exchanges.closing = true }
    case .end: exchanges.requestEnds &+= 1
    case .body: break
    }
    context.fireChannelRead(data)
  }

  func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
    switch unwrapOutboundIn(data) {
    case .head(let head):
      if Self.isPreEncoded(head) {
        _ = methods.popFirst()
        mode = .preEncoded
        promise?.succeed(())
        return
      }
      let code = head.status.code
      let informational = (100..<200).contains(code) && code != 101
      if !informational {
        let method = methods.popFirst()
        mode = method == .HEAD || method == .CONNECT ? .bodiless : .encoding
        if head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "close" }) {
          exchanges.closing = true
        }
      }
      encoder.write(context: context, data: data, promise: promise)
    case .body(let body):
      switch mode {
      case .encoding: encoder.write(context: context, data: data, promise: promise)
      case .preEncoded: context.write(wrapOutboundOut(body), promise: promise)
      case .bodiless: promise?.fail(NIOHTTPResponseEncoderError.responseBodyNotAllowed)
      }
    case .end:
      exchanges.open -= 1
      exchanges.responseEnds &+= 1
      switch mode {
      case .encoding: encoder.write(context: context, data: data, promise: promise)
      case .preEncoded, .bodiless:
        mode = .encoding
        // Nothing to write; the promise completes once what is before it is written.
        if let promise { context.write(wrapOutboundOut(.byteBuffer(ByteBuffer())), promise: promise) }
      }
    }
  }
}
