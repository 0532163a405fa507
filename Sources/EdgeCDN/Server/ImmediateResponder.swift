public import NIOCore
public import NIOHTTP1

/// Answers some requests synchronously on the connection's event loop; the server asks
/// it before handing a request to the async `HTTPRequestHandler`.
///
/// Why: crossing from the event loop to a task and back costs more than serving a
/// small cached object. A responder answers only what it can answer completely now
/// (a fresh RAM hit) and returns nil for everything else, which then takes the async
/// path unchanged.
public protocol ImmediateResponder: Sendable {
  /// The whole response to a GET or HEAD without a body, or nil to use the async path.
  /// `keepAlive` is the server's decision so far (the request's and shutdown's); the
  /// response carries the final one.
  func immediateResponse(to head: HTTPRequestHead, keepAlive: Bool) -> ImmediateResponse?
}

/// A complete response: head and body buffers (none for HEAD), and whether the
/// connection stays open after it.
public struct ImmediateResponse: Sendable {
  public var head: HTTPResponseHead
  public var body: [ByteBuffer]
  public var keepAlive: Bool

  public init(head: HTTPResponseHead, body: [ByteBuffer], keepAlive: Bool) {
    self.head = head
    self.body = body
    self.keepAlive = keepAlive
  }
}
