import NIOCore

/// Runs the connection's `ConnectionIdleTimer` where no `WireResponder` does: first in
/// the pipeline, so that it sees each socket read and write once, whichever handler
/// answers.
final class ConnectionIdleHandler: ChannelDuplexHandler, RemovableChannelHandler {
  typealias InboundIn = NIOAny
  typealias OutboundIn = NIOAny

  private let idle: ConnectionIdleTimer

  init(timeout: TimeAmount, exchanges: OpenExchanges) {
    self.idle = ConnectionIdleTimer(timeout: timeout, exchanges: exchanges)
  }

  func handlerAdded(context: ChannelHandlerContext) {
    if context.channel.isActive { idle.start(context: context) }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    idle.stop()
  }

  func channelActive(context: ChannelHandlerContext) {
    idle.start(context: context)
    context.fireChannelActive()
  }

  func channelInactive(context: ChannelHandlerContext) {
    idle.stop()
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    idle.active = true
    context.fireChannelRead(data)
  }

  func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
    idle.active = true
    context.write(data, promise: promise)
  }
}
