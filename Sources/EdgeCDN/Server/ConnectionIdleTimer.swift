import NIOCore

/// Closes a client connection that has seen neither a read nor a write for `timeout`
/// (within a quarter of it): what `IdleStateHandler(allTimeout:)` plus a close did. The
/// handler that sees the connection's reads and writes sets `active`; a timer on the
/// connection's event loop looks at it four times per timeout.
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
  private var quietChecks = 0
  private var timer: RepeatedTask?

  init(timeout: TimeAmount) {
    self.timeout = timeout
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
    if active {
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
