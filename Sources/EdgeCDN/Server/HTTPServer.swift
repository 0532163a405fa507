public import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
public import ServiceLifecycle
import Synchronization

/// An HTTP/1.1 listener: keep-alive, pipelining made safe by NIOHTTP1's
/// `HTTPServerPipelineHandler` (one request at a time, responses in order), limits on
/// request line, header section, body and idle time, and 400 + close for malformed
/// input (`ProtocolErrorHandler`, NIOHTTP1's one made aware of early answers). A handler's `ImmediateResponder`
/// answers what it can on the event loop (`WireResponder`, from the request's bytes, when
/// nothing else is in flight, else `ImmediateResponseHandler`); the rest reaches
/// the handler through a task per connection.
///
/// A `Service`: on graceful shutdown it stops accepting, closes idle connections, lets
/// responses in flight finish (up to the drain timeout), then returns.
public final class HTTPServer<Handler: HTTPRequestHandler>: Service, Sendable {
  public struct Limits: Sendable, Hashable {
    public var maxRequestLineBytes: Int
    public var maxHeaderBytes: Int
    public var maxRequestBodyBytes: Int
    public var idleTimeout: TimeAmount
    public var drainTimeout: TimeAmount

    public init(
      maxRequestLineBytes: Int = 8 << 10, maxHeaderBytes: Int = 32 << 10, maxRequestBodyBytes: Int = 16 << 20,
      idleTimeout: TimeAmount = .seconds(60), drainTimeout: TimeAmount = .seconds(10)
    ) {
      self.maxRequestLineBytes = maxRequestLineBytes
      self.maxHeaderBytes = maxHeaderBytes
      self.maxRequestBodyBytes = maxRequestBodyBytes
      self.idleTimeout = idleTimeout
      self.drainTimeout = drainTimeout
    }

    /// What the server answers instead of serving `head`, if anything (`RequestRejection`).
    func rejection(of head: HTTPRequestHead) -> HTTPResponseStatus? {
      RequestRejection.status(of: head, maxRequestLineBytes: maxRequestLineBytes, maxHeaderBytes: maxHeaderBytes)
    }
  }

  typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

  private let listener: NIOAsyncChannel<Connection, Never>
  private let handler: Handler
  private let limits: Limits
  private let logger: Logger
  private let hasImmediateResponder: Bool
  private let connections = Mutex<[ObjectIdentifier: (channel: any Channel, busy: Bool)]>([:])
  private let unserved: UnservedConnections
  private let shuttingDown: Flag

  /// Whether the listening socket is still open.
  public var isAccepting: Bool { listener.channel.isActive }

  /// The bound address (the real port when bound to port 0).
  public var localAddress: SocketAddress? { listener.channel.localAddress }

  /// Binds now, so a bad address fails at start-up, before `run()`.
  public init(
    host: String, port: Int, handler: Handler, limits: Limits = Limits(),
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
  ) async throws {
    self.handler = handler
    self.limits = limits
    self.logger = logger
    let idle = limits.idleTimeout
    let shuttingDown = Flag()
    self.shuttingDown = shuttingDown
    let responder = handler.immediateResponder
    let unserved = UnservedConnections()
    self.unserved = unserved
    self.hasImmediateResponder = responder != nil
    self.listener = try await ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 1024)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelOption(.maxMessagesPerRead, value: 16)
      // With a responder, `WireResponder` issues the reads (see its `channelReadComplete`).
      .childChannelOption(.autoRead, value: responder == nil)
      .bind(host: host, port: port) { channel in
        channel.eventLoop.makeCompletedFuture {
          // First, so that it sees each socket read and write once, whichever handler answers;
          // with a responder, `WireResponder` is first and does this work.
          let exchanges = OpenExchanges()
          if responder == nil {
            try channel.pipeline.syncOperations.addHandler(ConnectionIdleHandler(timeout: idle, exchanges: exchanges))
          }
          try ResponseEncoder.configureServerPipeline(
            channel.pipeline.syncOperations, exchanges: exchanges,
            front: responder.map {
              WireResponder(
                responder: $0, shuttingDown: shuttingDown, exchanges: exchanges,
                maxRequestLineBytes: limits.maxRequestLineBytes, maxHeaderBytes: limits.maxHeaderBytes,
                idleTimeout: idle)
            })
          if let responder {
            try channel.pipeline.syncOperations.addHandler(
              ImmediateResponseHandler(
                responder: responder, shuttingDown: shuttingDown, exchanges: exchanges,
                maxRequestLineBytes: limits.maxRequestLineBytes, maxHeaderBytes: limits.maxHeaderBytes))
          }
          let connection = try Connection(wrappingChannelSynchronously: channel)
          unserved.adopt(connection)
          return connection
        }
      }
  }

  /// Serves until a graceful shutdown, or until the calling task is cancelled, which is
  /// taken as one: stop accepting, close idle connections, let responses in flight finish
  /// (up to the drain timeout), then return.
  ///
  /// Why cancellation does not reach the accept loop: a `for await` over the listener's
  /// connections that is cancelled drops the ones NIO has accepted but not yet handed over,
  /// and a NIOAsyncChannel dropped unfinished traps the process ("Deinited NIOAsyncWriter
  /// without calling finish()", swift-nio#2637). So the loop runs in a task of its own and
  /// ends the way a graceful shutdown ends it: the listener closes, the loop takes every
  /// connection still queued, and each is closed inside its `executeThenClose`.
  public func run() async throws {
    let accepting = Task { try await self.acceptLoop() }
    try await withTaskCancellationHandler {
      try await withGracefulShutdownHandler {
        try await accepting.value
      } onGracefulShutdown: {
        self.beginShutdown()
      }
    } onCancel: {
      self.beginShutdown()
    }
  }

  private func acceptLoop() async throws {
    do {
      try await listener.executeThenClose { inbound in
        try await withThrowingDiscardingTaskGroup { group in
          for try await connection in inbound {
            group.addTask { await self.serve(connection) }
          }
        }
      }
    } catch {
      await closeUnserved()
      throw error
    }
    await closeUnserved()
  }

  /// Connections NIO accepted while the listener closed never reach the loop: each is
  /// finished and closed here (see `UnservedConnections`).
  private func closeUnserved() async {
    for connection in unserved.stop() {
      try? await connection.executeThenClose { _, _ in }
    }
  }

  /// Stops accepting and closes idle connections; busy ones close after their response,
  /// and whatever is still open after the drain timeout is closed.
  public func beginShutdown() {
    shuttingDown.value.store(true, ordering: .relaxed)
    listener.channel.close(promise: nil)
    let open = connections.withLock { Array($0.values) }
    for connection in open where !connection.busy {
      if hasImmediateResponder {
        // Lets a large response answered on the event loop finish first.
        connection.channel.pipeline.fireUserInboundEventTriggered(ImmediateResponseHandler.CloseWhenWritten())
      } else {
        connection.channel.close(promise: nil)
      }
    }
    listener.channel.eventLoop.scheduleTask(in: limits.drainTimeout) { [self] in
      for connection in connections.withLock({ Array($0.values) }) { connection.channel.close(promise: nil) }
    }
  }

  private func setBusy(_ id: ObjectIdentifier, _ busy: Bool) {
    connections.withLock { $0[id]?.busy = busy }
  }

  private func serve(_ connection: Connection) async {
    let channel = connection.channel
    let id = ObjectIdentifier(channel)
    unserved.served(id)
    connections.withLock { $0[id] = (channel, false) }
    defer { connections.withLock { _ = $0.removeValue(forKey: id) } }
    if shuttingDown.value.load(ordering: .relaxed) {
      // As `beginShutdown` does for an idle connection: the event loop may already have
      // answered a request of this one (its task starts late on a busy pool), and a large
      // response still in NIO's buffers would be cut by a plain close.
      if hasImmediateResponder {
        channel.pipeline.fireUserInboundEventTriggered(ImmediateResponseHandler.CloseWhenWritten())
      } else {
        channel.close(promise: nil)
      }
    }
    do {
      try await connection.executeThenClose { inbound, outbound in
        let parts = RequestStream(inbound.makeAsyncIterator(), limit: limits.maxRequestBodyBytes)
        while let part = try await parts.next() {
          guard case .head(let head) = part else { continue }
          setBusy(id, true)
          var writer = ResponseWriter(
            outbound: outbound, channel: channel,
            keepAlive: head.isKeepAlive && !shuttingDown.value.load(ordering: .relaxed),
            version: head.version)
          if let rejection = limits.rejection(of: head) {
            try await writer.respond(status: rejection, text: "\(rejection.reasonPhrase)\n", close: true)
            return
          }
          let declaredLength = head.headers.first(name: "content-length").flatMap { Int($0) }
          if let declaredLength, declaredLength > limits.maxRequestBodyBytes {
            // Refused before its body is read. The connection closes; what the client already
            // sent is read first (up to a bound), since closing on unread bytes sends a reset
            // that can destroy the 413 before the client reads it.
            try await writer.respond(status: .payloadTooLarge, text: "request body too large\n", close: true)
            await parts.discard(upTo: Self.lingerBytes)
            return
          }
          var body: RequestBody?
          if (declaredLength ?? 0) > 0 || head.headers.contains(name: "transfer-encoding") {
            parts.beginBody()
            body = RequestBody(stream: parts, declaredLength: declaredLength)
          } else {
            reading: while let next = try await parts.next() {
              switch next {
              case .body: continue
              case .end: break reading
              case .head: return
              }
            }
          }
          let request = ServerRequest(
            head: head, body: body, remoteAddress: channel.remoteAddress, eventLoop: channel.eventLoop)
          do {
            try await handler.handle(request, writer: &writer)
          } catch let error as RequestBodyError {
            logger.debug("request body failed", metadata: ["uri": "\(head.uri)", "error": "\(error)"])
            guard case .tooLarge = error, !writer.headSent else { return }
            try await writer.respond(status: .payloadTooLarge, text: "request body too large\n", close: true)
            return
          } catch {
            logger.debug("request failed", metadata: ["uri": "\(head.uri)", "error": "\(error)"])
            if writer.headSent { return }
            try await writer.respond(status: .internalServerError, text: "internal error\n", close: true)
            return
          }
          // A handler that returned without ending its response leaves the pipelining handler
          // waiting for that end, so nothing more can be served, and the idle timer would take
          // the connection for the server's turn for ever: it closes.
          guard writer.completed else {
            logger.debug("response not ended by its handler: closing", metadata: ["uri": "\(head.uri)"])
            return
          }
          // What the handler left of the body is read and dropped (bounded by the limit): the
          // next request must parse, and closing with unread bytes would make the kernel reset
          // the connection, which can destroy the response before the client reads it. On a
          // connection that closes anyway, a bounded part is enough (as for the 413 above).
          if body != nil, !parts.bodyEnded {
            if !writer.keepAlive {
              await parts.discard(upTo: Self.lingerBytes)
              return
            }
            if !(await parts.drainBody()) { return }
          }
          setBusy(id, false)
          if !writer.keepAlive || shuttingDown.value.load(ordering: .relaxed) { return }
        }
      }
    } catch {
      logger.trace("connection ended", metadata: ["error": "\(error)"])
    }
  }

  /// How much of a refused body is read before closing (see the 413 above).
  static var lingerBytes: Int { 256 << 10 }
}

/// Connections accepted (their NIOAsyncChannel made in the child initializer) but not yet
/// handed to `serve`. Why keep them: when the listener closes while NIO is accepting, a
/// new connection can be dropped between the initializer and the accept loop, and a
/// NIOAsyncChannel released without its writer finished traps the process
/// (swift-nio#2637). Held here, each is either served or, once the loop has ended,
/// finished and closed; one arriving after that is closed at once.
final class UnservedConnections: Sendable {
  typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

  private let state = Mutex<(stopped: Bool, waiting: [ObjectIdentifier: Connection])>((false, [:]))

  func adopt(_ connection: Connection) {
    let adopted = state.withLock { state -> Bool in
      guard !state.stopped else { return false }
      state.waiting[ObjectIdentifier(connection.channel)] = connection
      return true
    }
    guard !adopted else { return }
    connection.channel.close(promise: nil)
    Task { try? await connection.executeThenClose { _, _ in } }
  }

  func served(_ id: ObjectIdentifier) {
    _ = state.withLock { $0.waiting.removeValue(forKey: id) }
  }

  /// Ends adoption; returns the connections never served.
  func stop() -> [Connection] {
    state.withLock { state in
      state.stopped = true
      defer { state.waiting = [:] }
      return Array(state.waiting.values)
    }
  }
}
