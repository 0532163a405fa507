public import NIOCore
public import NIOHTTP1

/// A request as the server hands it to a handler: the head, and the body to stream.
public struct ServerRequest: Sendable {
  public var head: HTTPRequestHead
  /// Nil when the request has no body (neither Content-Length above 0 nor Transfer-Encoding).
  /// A handler that does not read it leaves it to the server, which drops it.
  public var body: RequestBody?
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
