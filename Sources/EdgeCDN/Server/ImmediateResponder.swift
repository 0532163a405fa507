public import EdgeCDNStore
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
  /// response carries the final one. `connection` is the responder's own memo for the
  /// connection the request came on, kept between its requests.
  func immediateResponse(
    to head: HTTPRequestHead, keepAlive: Bool, connection: inout ImmediateConnectionMemo
  ) -> ImmediateResponse?

  /// The response to a plain GET or HEAD read from the connection's bytes, ahead of
  /// NIOHTTP1's decoder (`WireResponder`), when its head is `.encoded` (written as it
  /// is); nil, with no effect (no counter, no log), for anything else, setting
  /// `connection.answerableBehind` when `immediateResponse` would answer it. No default: a
  /// wrapper that forgot it would silently send every hit the longer way.
  func wireResponse(
    to request: WireRequest, keepAlive: Bool, connection: inout ImmediateConnectionMemo
  ) -> ImmediateResponse?
}

extension ImmediateResponder {
  /// A request answered without a connection's memo.
  public func immediateResponse(to head: HTTPRequestHead, keepAlive: Bool) -> ImmediateResponse? {
    var memo = ImmediateConnectionMemo()
    return immediateResponse(to: head, keepAlive: keepAlive, connection: &memo)
  }
}

/// What a responder keeps for one connection between its requests (a connection's
/// requests often repeat: the responder can keep what it derived from the last one).
/// Lives in the connection's pipeline, on its event loop: never shared.
public struct ImmediateConnectionMemo {
  public var value: AnyObject?
  /// Set by `wireResponse` when it declines a request that `immediateResponse` would
  /// answer (a hit whose head is not pre-encoded): the server then asks again behind the
  /// pipelining handler. Left false, a declined request is not asked about again there
  /// (a miss would otherwise be keyed and looked up twice on the event loop).
  public var answerableBehind = false

  public init() {}
}

/// A complete response: head and body buffers (none for HEAD), or after the head a body
/// in a file (`fileBody`, sent as a file region: sendfile), and whether the connection
/// stays open after it.
public struct ImmediateResponse: Sendable {
  public enum Head: Sendable {
    /// Encoded by NIOHTTP1, after its header validator.
    case fields(HTTPResponseHead)
    /// The status line and header section already serialised, with the blank line, and
    /// possibly the start of the body: written as they are (`ResponseEncoder`). The
    /// responder vouches that they are valid to send, and frame `body` exactly.
    case encoded(ByteBuffer)
  }

  public var head: Head
  public var body: [ByteBuffer]
  /// Sent after `body`; its lease is held until its write completes.
  public var fileBody: FileBody?
  public var keepAlive: Bool

  public init(head: HTTPResponseHead, body: [ByteBuffer], keepAlive: Bool, fileBody: FileBody? = nil) {
    self.head = .fields(head)
    self.body = body
    self.keepAlive = keepAlive
    self.fileBody = fileBody
  }

  public init(encoded: ByteBuffer, body: [ByteBuffer], keepAlive: Bool, fileBody: FileBody? = nil) {
    self.head = .encoded(encoded)
    self.body = body
    self.keepAlive = keepAlive
    self.fileBody = fileBody
  }
}
