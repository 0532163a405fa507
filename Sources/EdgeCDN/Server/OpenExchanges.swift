import EdgeCDNStore
import NIOCore

/// What a connection's handlers share about its exchanges, so that `WireResponder`,
/// in front of the decoder, answers only when doing so cannot reorder responses.
///
/// Why a shared object and not an event: it is read once per request and written by
/// handlers on the same event loop, never across threads; a field read costs nothing,
/// where a pipeline event costs a hop through every handler.
final class OpenExchanges {
  /// Requests that reached `ResponseEncoder` (on their way to the pipelining handler) and
  /// whose response has not ended yet.
  var open = 0
  /// A response said, or will say, Connection: close: nothing may follow it.
  var closing = false
  /// Set while `WireResponder` hands the decoder a request its responder just declined:
  /// the connection was idle, so the request goes through to `ImmediateResponseHandler`
  /// within that call, which then does not ask the same question again (a second key
  /// and lookup per miss). Cleared when the call returns.
  var declinedInFront = false
  /// The decoder failed on the input (`ProtocolErrorHandler` answered 400 and closes).
  var failed = false
  /// Requests whose end reached `ResponseEncoder`, and responses it ended (or requests
  /// dropped unanswered because an earlier response closes the connection): counted apart
  /// from `open` because a response may end before its request's body has all arrived
  /// (an early 413 or error), and then the client's part is not done.
  var requestEnds = 0
  var responseEnds = 0

  init() {}

  /// Large responses written on the event loop (by `WireResponder` or
  /// `ImmediateResponseHandler`) not yet handed whole to the socket: a graceful shutdown
  /// closes the connection after them (closing drops what NIO still queues for a slow
  /// client). Small ones are not counted, to keep a promise and a callback off the hot
  /// 1 KiB hit: they reach the socket buffer in the write itself unless the client
  /// stopped reading.
  private var largeWritesInFlight = 0
  private var closeWhenWritten = false
  /// Bodies from this size on are tracked.
  static let trackedBodyBytes = 16 << 10

  /// Writes and flushes `data`, the last part of a fast response, tracking it when the
  /// response's body is large. `lease`, the file region `data` holds, is ended once the
  /// write completes.
  func writeLast(_ data: NIOAny, bodyBytes: Int, lease: FileBodyLease? = nil, context: ChannelHandlerContext) {
    guard bodyBytes >= Self.trackedBodyBytes || lease != nil else {
      context.writeAndFlush(data, promise: nil)
      return
    }
    largeWritesInFlight += 1
    let channel = context.channel
    context.writeAndFlush(data).assumeIsolated().whenComplete { [self] _ in
      lease?.end()
      largeWritesInFlight -= 1
      if closeWhenWritten, largeWritesInFlight == 0, open == 0 { channel.close(promise: nil) }
    }
  }

  /// The server's graceful shutdown, on a connection the server saw no request on: closes
  /// now, or once the large fast responses in flight are written. Not while a request is
  /// open behind (one the async path had not picked up yet when the server looked): that
  /// path closes the connection itself after its response, when the server is shutting
  /// down, and a close here would cut that response or drop it.
  func closeWhenWritten(context: ChannelHandlerContext) {
    if largeWritesInFlight == 0, open == 0 {
      context.close(promise: nil)
    } else {
      closeWhenWritten = true
    }
  }

  /// A request has arrived whole and its response has not ended: the server's turn, which
  /// the idle timer does not count against the client (`ConnectionIdleTimer`).
  var owesResponse: Bool { requestEnds &- responseEnds > 0 }

  /// Whether a request arriving now may be answered ahead of the pipelining handler.
  var isIdle: Bool { open == 0 && !closing && !failed }
}
