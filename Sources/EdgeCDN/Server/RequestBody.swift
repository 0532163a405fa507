public import NIOCore
import NIOHTTP1

/// A request body as it arrives from the client, for a handler to stream on (to the
/// origin) instead of the server buffering it: memory per upload stays a few chunks,
/// and the client's pace and the origin's reach each other through TCP.
///
/// Read by one task at a time: the handler's while it runs, then the server's, which
/// reads and drops whatever the handler left so the next request on the connection
/// parses. The size limit holds for chunked bodies too: a read past it throws.
public struct RequestBody: Sendable {
  let stream: RequestStream
  /// The Content-Length the client declared; nil for a chunked body.
  public let declaredLength: Int?

  /// The next chunk; nil at the end of the body.
  public func read() async throws(RequestBodyError) -> ByteBuffer? {
    try await stream.readBody()
  }
}

/// Why a request body could not be read to its end.
public enum RequestBodyError: Error, Hashable, Sendable, CustomStringConvertible {
  /// A chunked body grew past `proxy.limits.maxBodySize` (a declared one is refused before).
  case tooLarge(limit: Int)
  /// The client closed the connection or sent a malformed body before its end.
  case clientFailed(reason: String)

  public var description: String {
    switch self {
    case .tooLarge(let limit): "request body larger than \(limit) bytes (proxy.limits.maxBodySize)"
    case .clientFailed(let reason): "request body cut short: \(reason)"
    }
  }
}

/// The request parts of one connection: the server's loop and a request's body share
/// the one iterator NIOAsyncChannel gives, never at the same time (see `RequestBody`),
/// which is what makes the unchecked Sendable sound.
final class RequestStream: @unchecked Sendable {
  private enum BodyState {
    case none
    case reading(received: Int)
    case ended
    case failed(RequestBodyError)
  }

  private var iterator: NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator
  private var body = BodyState.none
  private let limit: Int

  init(_ iterator: NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator, limit: Int) {
    self.iterator = iterator
    self.limit = limit
  }

  /// The next part between requests (a head, or what a request without a body ends with).
  func next() async throws -> HTTPServerRequestPart? {
    try await iterator.next()
  }

  func beginBody() {
    body = .reading(received: 0)
  }

  var bodyEnded: Bool {
    if case .ended = body { return true }
    return false
  }

  func readBody() async throws(RequestBodyError) -> ByteBuffer? {
    let received: Int
    switch body {
    case .none, .ended: return nil
    case .failed(let error): throw error
    case .reading(let count): received = count
    }
    let part: HTTPServerRequestPart?
    do {
      part = try await iterator.next()
    } catch {
      return try fail(.clientFailed(reason: "\(error)"))
    }
    switch part {
    case .body(let chunk):
      let total = received + chunk.readableBytes
      if total > limit { return try fail(.tooLarge(limit: limit)) }
      body = .reading(received: total)
      return chunk
    case .end:
      body = .ended
      return nil
    case .head, nil:
      return try fail(.clientFailed(reason: "connection closed mid-body"))
    }
  }

  private func fail(_ error: RequestBodyError) throws(RequestBodyError) -> ByteBuffer? {
    body = .failed(error)
    throw error
  }

  /// Reads and drops parts until a request's end, `bytes` of body or a failure.
  func discard(upTo bytes: Int) async {
    var left = bytes
    while left > 0, case .body(let chunk)? = try? await iterator.next() { left -= chunk.readableBytes }
  }

  /// Reads and drops the rest of the body, so the next request on the connection parses;
  /// false when it cannot be read to its end (the connection must close).
  func drainBody() async -> Bool {
    do {
      while try await readBody() != nil {}
      return true
    } catch {
      return false
    }
  }
}
