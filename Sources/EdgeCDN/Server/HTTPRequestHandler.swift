public import NIOCore
public import NIOHTTP1

/// A request as the server hands it to a handler: head and the (limited) body.
public struct ServerRequest: Sendable {
  public var head: HTTPRequestHead
  /// Nil when the request had no body.
  public var body: ByteBuffer?
  public var remoteAddress: SocketAddress?
  /// The event loop of the client's connection, for timers.
  public var eventLoop: any EventLoop
}

/// What serves requests on a listener: the caching proxy, or the admin API.
public protocol HTTPRequestHandler: Sendable {
  /// Writes exactly one response. Throwing after the head was sent closes the connection
  /// (the body cannot be completed); throwing before it makes the server answer 500.
  func handle(_ request: ServerRequest, writer: inout ResponseWriter) async throws

  /// Answers some requests on the event loop before they reach `handle`; nil (the
  /// default) sends every request to `handle`.
  var immediateResponder: (any ImmediateResponder)? { get }
}

extension HTTPRequestHandler {
  public var immediateResponder: (any ImmediateResponder)? { nil }
}
