import EdgeCDNStore
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Answers requests from the connection's bytes, in front of NIOHTTP1's decoder, when
/// the connection has nothing else in flight: the request is scanned where it lies in
/// the read buffer (`WireRequestScan`) and the response is one `IOData` write that goes
/// straight to the socket.
///
/// Why: a cached 1 KiB hit answered behind the decoder paid llhttp's callbacks, a String
/// per field name and value, the request's parts through the pipeline and, behind
/// `HTTPServerPipelineHandler`, the response's parts through five handlers: more CPU
/// than the lookup and the write. Here it pays a scan of the head's bytes.
///
/// The decoder stays right because it is only ever handed whole requests that end where
/// their head ends (`.bodiless`, or a plain request not answered here), so it is at a
/// request's start whenever the scan runs; from the first request that may have a body,
/// or that the scan does not fully understand, every byte goes to the decoder for the
/// rest of the connection. Order stays right because a request is answered here only
/// when every earlier one has been answered completely (`OpenExchanges.isIdle`); the
/// pipelining handler never sees the requests answered here, so its bookkeeping stays idle.
///
/// It also issues the connection's reads, the channel's `autoRead` being off (see
/// `channelReadComplete`), and, first in the pipeline, runs the connection's idle timer
/// (`ConnectionIdleTimer`): it sees every socket read, its own writes and, as an outbound
/// handler, every write from behind.
final class WireResponder: ChannelDuplexHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer
  typealias OutboundIn = IOData
  typealias OutboundOut = IOData

  private let responder: any ImmediateResponder
  private let shuttingDown: Flag
  private let exchanges: OpenExchanges
  /// The server's limits: a head over them goes to the decoder, and the path behind
  /// refuses it.
  private let maxRequestLineBytes: Int
  private let maxHeaderBytes: Int
  private var memo = ImmediateConnectionMemo()
  private let idle: ConnectionIdleTimer?
  /// The start of a request whose head has not all arrived. Dropped if the client goes
  /// (the server does not allow half-closed connections, so there is no input-closed
  /// event to hand it to the decoder on).
  private var partial: ByteBuffer?
  /// The decoder has the input from here on.
  private var decoderOnly = false
  /// A response from here said Connection: close: later requests are dropped, as the
  /// handlers behind drop them when they close.
  private var closing = false
  /// Responses written since the last flush: flushed once per read, so pipelined hits
  /// share one syscall.
  private var unflushed = false
  /// Something went on to the decoder since the last read completed. Why: when a read
  /// brought only requests answered here, its completion is not passed on; it would walk
  /// six handlers to the async channel's, which would find nothing to deliver.
  private var forwarded = false

  /// `idleTimeout`: when given, this handler closes the connection after that long
  /// without a read or a write (`ConnectionIdleHandler`'s work).
  init(
    responder: any ImmediateResponder, shuttingDown: Flag, exchanges: OpenExchanges, maxRequestLineBytes: Int,
    maxHeaderBytes: Int, idleTimeout: TimeAmount? = nil
  ) {
    self.idle = idleTimeout.map { ConnectionIdleTimer(timeout: $0, exchanges: exchanges) }
    self.responder = responder
    self.shuttingDown = shuttingDown
    self.exchanges = exchanges
    self.maxRequestLineBytes = maxRequestLineBytes
    self.maxHeaderBytes = maxHeaderBytes
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    // Dropped bytes are no activity: a client that trickles bytes after a response that
    // closes, without reading it, must still time out.
    if closing { return }
    idle?.active = true
    if decoderOnly {
      forward(context, data)
      return
    }
    var input = unwrapInboundIn(data)
    if var earlier = partial {
      partial = nil
      earlier.writeBuffer(&input)
      input = earlier
    }
    while input.readableBytes > 0 {
      let scan = input.withUnsafeReadableBytes {
        WireRequestScan.scan($0, maxRequestLineBytes: maxRequestLineBytes, maxHeaderBytes: maxHeaderBytes)
      }
      switch scan {
      case .incomplete:
        // Copied, so the read buffer (and the requests already answered from it) is not held.
        var rest = context.channel.allocator.buffer(capacity: input.readableBytes)
        rest.writeBuffer(&input)
        partial = rest
        return
      case .other:
        decoderOnly = true
        forward(context, wrapInboundOut(input))
        return
      case .bodiless(let length):
        forward(context, wrapInboundOut(input.readSlice(length: length) ?? ByteBuffer()))
      case .plain(let plain, let length):
        let head = input.readSlice(length: length) ?? ByteBuffer()
        switch answer(plain, head: head, context: context) {
        case .answered: break
        case .declined:
          exchanges.declinedInFront = true
          forward(context, wrapInboundOut(head))
          exchanges.declinedInFront = false
        case .notAsked: forward(context, wrapInboundOut(head))
        }
        if closing { return }
      }
      // A parser error behind (400 and close) ends the connection; nothing may follow.
      guard context.channel.isActive, !exchanges.failed else { return }
    }
  }

  /// The first read, from the tail as `autoRead` issues it.
  func handlerAdded(context: ChannelHandlerContext) {
    guard context.channel.isActive else { return }
    idle?.start(context: context)
    context.pipeline.syncOperations.read()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    idle?.stop()
  }

  func channelActive(context: ChannelHandlerContext) {
    idle?.start(context: context)
    context.fireChannelActive()
    context.pipeline.syncOperations.read()
  }

  func channelInactive(context: ChannelHandlerContext) {
    idle?.stop()
    context.fireChannelInactive()
  }

  /// A write from the handlers behind.
  func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
    idle?.active = true
    context.write(data, promise: promise)
  }

  /// Issues the next read, as `autoRead` would (one per read cycle, and one when the
  /// connection opens), but from here when it can: `autoRead` issues it from the
  /// pipeline's tail, through the six outbound handlers behind this one (about 6% of
  /// the server's CPU on a hot 1 KiB hit), of which only two ever hold a read: the
  /// pipelining handler while a response is open, and the async channel's while its
  /// buffer is full.
  ///
  /// From here only when this read cycle passed nothing on and no exchange is open
  /// behind: with every request so far handed over whole (not `decoderOnly`) and each
  /// answered (`OpenExchanges.isIdle`), the pipelining handler is idle, and the async
  /// path has taken every part it was given before answering (its handler's "produce
  /// more" reaches the event loop before that answer's end), so neither would hold the
  /// read. Otherwise (anything passed on, a response open or closing, a parser error, the
  /// decoder having the input) from the tail, so that either can hold it and issue it
  /// again once it is ready: the backpressure `autoRead` had. Were that reasoning ever
  /// wrong, the cost is bounded: the next cycle that passes anything on reads from the
  /// tail again.
  func channelReadComplete(context: ChannelHandlerContext) {
    if unflushed {
      unflushed = false
      context.flush()
    }
    if forwarded {
      forwarded = false
      context.fireChannelReadComplete()
      context.pipeline.syncOperations.read()
    } else if exchanges.isIdle, !decoderOnly {
      context.read()
    } else {
      context.pipeline.syncOperations.read()
    }
  }

  private func forward(_ context: ChannelHandlerContext, _ data: NIOAny) {
    forwarded = true
    context.fireChannelRead(data)
  }

  private enum Answer {
    /// Written here.
    case answered
    /// Nothing on the event loop can answer it: the handlers behind need not ask again.
    case declined
    /// Left to the handlers behind, `ImmediateResponseHandler` included.
    case notAsked
  }

  /// Writes the responder's answer, if it has one and may answer now.
  private func answer(_ plain: WireRequestScan.Plain, head: ByteBuffer, context: ChannelHandlerContext) -> Answer {
    guard exchanges.isIdle, context.channel.isWritable else { return .notAsked }
    let request = WireRequest(plain, bytes: head)
    let keepAlive = plain.isKeepAlive && !shuttingDown.value.load(ordering: .relaxed)
    memo.answerableBehind = false
    guard let response = responder.wireResponse(to: request, keepAlive: keepAlive, connection: &memo),
      case .encoded(let bytes) = response.head
    else { return memo.answerableBehind ? .notAsked : .declined }
    write(response, head: bytes, context: context)
    return .answered
  }

  private func write(_ response: ImmediateResponse, head: ByteBuffer, context: ChannelHandlerContext) {
    idle?.active = true
    // A large file body goes out corked: head and body in full segments, pushed when the
    // flush below has handed the kernel all it takes now (see `Self.corkedBodyBytes`).
    let corks = (response.fileBody?.length ?? 0) >= Self.corkedBodyBytes
    if corks { Self.setCork(true, context) }
    defer { if corks { Self.setCork(false, context) } }
    var last = IOData.byteBuffer(head)
    var bodyBytes = 0
    for chunk in response.body {
      context.write(wrapOutboundOut(last), promise: nil)
      bodyBytes += chunk.readableBytes
      last = .byteBuffer(chunk)
    }
    // sendfile; the lease keeps the descriptor open until NIO is done with the region.
    let lease = response.fileBody.flatMap { $0.length > 0 ? $0.lease() : nil }
    if let lease {
      context.write(wrapOutboundOut(last), promise: nil)
      bodyBytes += lease.region.readableBytes
      last = .fileRegion(lease.region)
    }
    if !response.keepAlive {
      closing = true
      exchanges.closing = true
      let channel = context.channel
      context.writeAndFlush(wrapOutboundOut(last)).whenComplete { _ in
        lease?.end()
        channel.close(promise: nil)
      }
    } else if bodyBytes >= OpenExchanges.trackedBodyBytes || lease != nil {
      exchanges.writeLast(wrapOutboundOut(last), bodyBytes: bodyBytes, lease: lease, context: context)
    } else {
      context.write(wrapOutboundOut(last), promise: nil)
      unflushed = true
    }
  }

  /// File bodies from this size are written under TCP_CORK (nginx's `tcp_nopush` with
  /// sendfile). Uncorked, the head left as a segment of its own and the body in pieces
  /// as the socket took them: on a 1 MiB hit wrk spent 314–361 µs of CPU per response
  /// against 185–203 corked, and edge-cdn plus wrk 405–468 µs against 336–373 (req/s
  /// 4,283–4,942 against 5,344–5,994; nginx 4,331–5,034). On 128 KiB it cost more than it
  /// saved (two more syscalls per response against fewer, already large, segments).
  static let corkedBodyBytes = 512 << 10

  private static func setCork(_ on: Bool, _ context: ChannelHandlerContext) {
    #if os(Linux)
      try? context.channel.syncOptions?.setOption(.tcpOption(.init(rawValue: TCP_CORK)), value: on ? 1 : 0)
    #endif
  }
}
