import NIOCore

/// Closes a client connection that has seen neither a read nor a write for `timeout`
/// (within a quarter of it) while it was the client's turn: what nginx's
/// `keepalive_timeout`, `client_header_timeout`, `client_body_timeout` and `send_timeout`
/// do together. The handler that sees the connection's reads and writes sets `active`; a
/// timer on the connection's event loop looks at it four times per timeout.
///
/// It is the server's turn, and never idleness, while a request has arrived whole, its
/// response has not ended (`OpenExchanges.owesResponse`) and the socket takes more
/// (`isWritable`): the server is waiting on the origin, a cache fill or its own tasks,
/// which the origin's timeouts and the cache lock's bound. Why: counted as idleness, a
/// slow origin's head, or the response's writer held for seconds by a busy cooperative
/// pool, closed a client that was doing nothing wrong, mid-body. A client that stops
/// reading leaves the socket unwritable, so it is still closed after the timeout, as is
/// one that stops sending its request midway.
///
/// Why not `IdleStateHandler`: it times write completions, so every write part (head,
/// each body chunk, end) pays a promise, a future hop, a callback and a clock read;
/// on a small cached response that measured as several percent of the server's CPU.
/// A write the client never drains makes no more activity, so a stalled client is still
/// closed after the timeout.
///
/// A type of its own because two handlers run it: `ConnectionIdleHandler`, and
/// `WireResponder` on the connections it fronts (which saves the hops through one more
/// handler on every read, write, flush and read completion).
final class ConnectionIdleTimer {
  static let checksPerTimeout = 4

  /// A read or a write since the last check.
  var active = false
  private let timeout: TimeAmount
  private let exchanges: OpenExchanges
  private var quietChecks = 0
  private var timer: RepeatedTask?

  init(timeout: TimeAmount, exchanges: OpenExchanges) {
    self.timeout = timeout
    self.exchanges = exchanges
  }

  func start(context: ChannelHandlerContext) {
    guard timer == nil else { return }
    let interval = TimeAmount.nanoseconds(max(1_000_000, timeout.nanoseconds / Int64(Self.checksPerTimeout)))
    let bound = NIOLoopBound((timer: self, context: context), eventLoop: context.eventLoop)
    timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
      let (timer, context) = bound.value
      timer.check(context: context)
    }
  }

  func stop() {
    timer?.cancel()
    timer = nil
  }

  private func check(context: ChannelHandlerContext) {
    if active || (exchanges.owesResponse && context.channel.isWritable) {
      active = false
      quietChecks = 0
      return
    }
    quietChecks += 1
    if quietChecks >= Self.checksPerTimeout {
      stop()
      context.close(promise: nil)
    }
  }
}
