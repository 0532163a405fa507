public import NIOCore
import NIOHTTP1
import Synchronization

/// One request's response as its body reader sees it.
final class Exchange: Sendable {
  let connection: OriginConnection
  let upload: Upload?
  let answeredEarly: Bool
  let keepAlive: Bool

  init(connection: OriginConnection, upload: Upload?, answeredEarly: Bool, keepAlive: Bool) {
    self.connection = connection
    self.upload = upload
    self.answeredEarly = answeredEarly
    self.keepAlive = keepAlive
  }
}

/// An origin response body, read from the connection as it arrives. Read it to the end, or
/// drop it: dropping it early closes the origin connection rather than reading what nobody
/// wants. Read by one task at a time.
public final class OriginBody: Sendable {
  private enum State {
    case reading
    case ended
    case failed(OriginError)
  }

  private let exchange: Exchange
  private let state = Mutex(State.reading)

  init(exchange: Exchange) {
    self.exchange = exchange
  }

  /// The next chunk, nil at the end of the body.
  public func read() async throws(OriginError) -> ByteBuffer? {
    switch state.withLock({ $0 }) {
    case .ended: return nil
    case .failed(let error): throw error
    case .reading: break
    }
    let connection = exchange.connection
    do {
      while true {
        // A close mid-body is an error, not an end: NIOHTTP1 reports a truncated body as
        // HTTPParserError.invalidEOFState, and a stream that ends early is a close too.
        guard let part = try await connection.nextPart() else { throw ChannelError.eof }
        switch part {
        case .head: continue
        case .body(let chunk): return chunk
        case .end:
          state.withLock { $0 = .ended }
          await connection.responseEnded(exchange)
          return nil
        }
      }
    } catch {
      let failure = OriginError.connectionFailed(origin: connection.origin, reason: "\(error)")
      state.withLock { $0 = .failed(failure) }
      _ = exchange.upload?.abandonIfUnfinished()
      connection.close()
      throw failure
    }
  }

  deinit {
    let unfinished = state.withLock { state -> Bool in
      if case .reading = state { return true }
      return false
    }
    if unfinished {
      _ = exchange.upload?.abandonIfUnfinished()
      exchange.connection.close()
    }
  }
}
