public import NIOCore
public import NIOHTTP1
import Synchronization

/// A pooled HTTP/1.1 client for one origin, on NIOHTTP1.
///
/// Our own rather than async-http-client: that package adds 2.5-4.5 minutes to every
/// clean build on a 2-core machine (CI builds from scratch), and a reverse proxy needs
/// only keep-alive HTTP/1.1 to one host, with backpressure on the body, which fits in
/// a few small files. Idle connections are reused last-in first-out (the warmest socket).
public final class OriginClient: Sendable {
  public struct Configuration: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var maxIdleConnections: Int
    public var connectTimeout: TimeAmount
    /// Time allowed for the response head after the request is sent.
    public var responseTimeout: TimeAmount
    /// Time without a read while a body streams before the connection is dropped.
    public var readIdleTimeout: TimeAmount

    public init(
      host: String, port: Int, maxIdleConnections: Int = 64, connectTimeout: TimeAmount = .seconds(5),
      responseTimeout: TimeAmount = .seconds(30), readIdleTimeout: TimeAmount = .seconds(30)
    ) {
      self.host = host
      self.port = port
      self.maxIdleConnections = maxIdleConnections
      self.connectTimeout = connectTimeout
      self.responseTimeout = responseTimeout
      self.readIdleTimeout = readIdleTimeout
    }
  }

  public let configuration: Configuration
  private let group: any EventLoopGroup
  private let idle = Mutex<[OriginConnection]>([])
  private let closed = Atomic<Bool>(false)
  private let origin: String

  public init(configuration: Configuration, group: any EventLoopGroup) {
    self.configuration = configuration
    self.group = group
    self.origin = "\(configuration.host):\(configuration.port)"
  }

  /// HTTP/1.1 to the origin needs a Host: an HTTP/1.0 client may have sent none, and
  /// then the origin's own name goes, as nginx's `proxy_pass` sends `$proxy_host`.
  private func withHost(_ head: HTTPRequestHead) -> HTTPRequestHead {
    guard !head.headers.contains(name: "host") else { return head }
    var head = head
    head.headers.add(name: "Host", value: origin)
    return head
  }

  /// Sends a request and returns when the response head arrives; read or drop the body.
  /// A reused connection the origin closed meanwhile is retried once on a fresh one, for
  /// idempotent methods only (RFC 9110 §9.2.2): a POST may have reached the origin.
  public func send(_ head: HTTPRequestHead, body: ByteBuffer? = nil) async throws(OriginError) -> OriginResponse {
    let head = withHost(head)
    let attempts = Self.idempotent.contains(head.method) ? 2 : 1
    for attempt in 0..<attempts {
      let (connection, reused) = try await connection()
      do {
        return try await connection.send(head: head, body: body)
      } catch let error as OriginError {
        connection.close()
        if connection.responseTimedOut { throw timeoutError }
        // A cancelled request is not retried: the retry would fail at once too, after
        // sending the request again and closing a second pooled connection.
        if !reused || attempt == attempts - 1 || Task.isCancelled { throw error }
      } catch {
        connection.close()
        if connection.responseTimedOut { throw timeoutError }
        if !reused || attempt == attempts - 1 || error is CancellationError || Task.isCancelled {
          throw .connectionFailed(origin: origin, reason: "\(error)")
        }
      }
    }
    throw .connectionFailed(origin: origin, reason: "no connection")
  }

  /// Sends a request whose body streams from `upload` while it is sent, with the
  /// producer's pace (the pipe holds a few chunks); returns at the response head, which
  /// may come before the body is all sent (the pipe then refuses further chunks and the
  /// connection closes after the response). Never retried: the body is gone once sent.
  /// The response timeout starts once the whole body went out, so a long upload is not
  /// a slow origin; while it goes out the connection's idle timeout bounds a stall.
  func send(_ head: HTTPRequestHead, upload: BodyPipe) async throws(OriginError) -> OriginResponse {
    let head = withHost(head)
    let connection: OriginConnection
    do {
      (connection, _) = try await self.connection()
    } catch {
      upload.cancel()
      throw error
    }
    do {
      return try await connection.send(head: head, body: nil, upload: upload)
    } catch {
      connection.close()
      if connection.responseTimedOut { throw timeoutError }
      if let error = error as? OriginError { throw error }
      throw .connectionFailed(origin: origin, reason: "\(error)")
    }
  }

  /// What a request whose response head did not come in time fails with.
  private var timeoutError: OriginError {
    .timeout(origin: origin, seconds: configuration.responseTimeout.nanoseconds / 1_000_000_000)
  }

  static let idempotent: [HTTPMethod] = [.GET, .HEAD, .PUT, .DELETE, .OPTIONS, .TRACE]

  private func connection() async throws(OriginError) -> (OriginConnection, reused: Bool) {
    while let candidate = idle.withLock({ $0.popLast() }) {
      if candidate.isUsable { return (candidate, true) }
    }
    if closed.load(ordering: .relaxed) { throw .connectFailed(origin: origin, reason: "client shut down") }
    let connection = try await OriginConnection.connect(
      host: configuration.host, port: configuration.port, group: group,
      connectTimeout: configuration.connectTimeout, readIdleTimeout: configuration.readIdleTimeout,
      responseTimeout: configuration.responseTimeout
    ) { [weak self] connection in
      self?.release(connection)
    }
    return (connection, false)
  }

  private func release(_ connection: OriginConnection) {
    let keep =
      !closed.load(ordering: .relaxed)
      && idle.withLock { idle -> Bool in
        guard idle.count < configuration.maxIdleConnections else { return false }
        idle.append(connection)
        return true
      }
    if !keep { connection.close() }
  }

  /// Closes idle connections; busy ones close when their response ends.
  public func shutdown() {
    closed.store(true, ordering: .relaxed)
    for connection in idle.withLock({ idle in
      defer { idle = [] }; return idle
    }) { connection.close() }
  }
}

/// A shareable boolean, for closures that outlive the stack frame that made it.
final class Flag: Sendable {
  let value = Atomic<Bool>(false)
}

/// An origin response: the head now, the body as it arrives.
public struct OriginResponse: Sendable {
  public var head: HTTPResponseHead
  public var body: OriginBody
}
