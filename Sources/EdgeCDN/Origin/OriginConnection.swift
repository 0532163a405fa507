import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One keep-alive HTTP/1.1 connection to the origin, serving one request at a time.
///
/// The task that sends a request writes it and reads its response itself, head and body,
/// straight from the channel's inbound stream: each response part costs one hop from the
/// event loop to that task, as in async-http-client. (An earlier design had a task per
/// connection read the response and hand each body chunk over to the reader: two task
/// hops and a lock per chunk, which made 1 MiB bodies about 1.2x slower than
/// async-http-client; see docs/performance.md.) Backpressure is NIOAsyncChannel's: while
/// the reader does not ask for the next part, its buffer fills, NIO stops reading and
/// TCP flow control pushes back on the origin.
///
/// NIOAsyncChannel's streams only live inside `executeThenClose`, so a task holds that
/// scope open until the connection closes; the pool hands the connection to one request
/// at a time, which is what makes sharing its iterator sound (`InboundParts`).
final class OriginConnection: Sendable {
  let channel: any Channel
  let origin: String
  private let inbound: InboundParts
  private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
  private let usable = Atomic<Bool>(true)
  private let timedOut: Flag
  private let lifetime: Lifetime
  private let onIdle: @Sendable (OriginConnection) -> Void

  var isUsable: Bool { usable.load(ordering: .relaxed) && channel.isActive }

  /// Whether the current request's response timeout fired (`ResponseTimeoutHandler`), which
  /// closed the connection: the request's failure is a timeout.
  var responseTimedOut: Bool { timedOut.value.load(ordering: .acquiring) }

  private init(
    channel: any Channel, origin: String, inbound: InboundParts,
    outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>, timedOut: Flag, lifetime: Lifetime,
    onIdle: @escaping @Sendable (OriginConnection) -> Void
  ) {
    self.channel = channel
    self.origin = origin
    self.inbound = inbound
    self.outbound = outbound
    self.timedOut = timedOut
    self.lifetime = lifetime
    self.onIdle = onIdle
  }

  static func connect(
    host: String, port: Int, group: any EventLoopGroup, connectTimeout: TimeAmount, readIdleTimeout: TimeAmount,
    responseTimeout: TimeAmount, onIdle: @escaping @Sendable (OriginConnection) -> Void
  ) async throws(OriginError) -> OriginConnection {
    let origin = "\(host):\(port)"
    let asyncChannel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    let timedOut = Flag()
    do {
      asyncChannel = try await ClientBootstrap(group: group)
        .connectTimeout(connectTimeout)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        // Reads of up to 128 KiB (NIO's default stops at 64 KiB): a large body arrives in half
        // the parts, each a syscall, a decoder pass and a wake-up less. The allocator grows
        // only while reads fill it, so small responses keep small buffers. (256 KiB was faster
        // still, but let the kernel's receive-buffer autotuning hold far more of a body that
        // a stalled client does not read: up to 27 MiB in ProxyServerTests' backpressure test.)
        .channelOption(
          .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 128 << 10)
        )
        .connect(host: host, port: port) { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            try channel.pipeline.syncOperations.addHandlers([
              // Reads or writes: an upload that takes longer than this is not idle.
              IdleStateHandler(allTimeout: readIdleTimeout), CloseOnIdleHandler(),
              ResponseTimeoutHandler(timeout: responseTimeout, timedOut: timedOut),
            ])
            // At most 4 parts (512 KiB at the largest reads) wait for a reader that does not
            // keep up, a slow client's pass-through; NIO's default is 10.
            return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
              wrappingChannelSynchronously: channel,
              configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 4)))
          }
        }
    } catch {
      throw .connectFailed(origin: origin, reason: "\(error)")
    }
    let lifetime = Lifetime()
    asyncChannel.channel.closeFuture.whenComplete { _ in lifetime.end() }
    let opened = OnceContinuation<OriginConnection>()
    do {
      return try await withCheckedThrowingContinuation { continuation in
        opened.install(continuation)
        Task {
          do {
            try await asyncChannel.executeThenClose { inbound, outbound in
              let connection = OriginConnection(
                channel: asyncChannel.channel, origin: origin, inbound: InboundParts(inbound.makeAsyncIterator()),
                outbound: outbound, timedOut: timedOut, lifetime: lifetime, onIdle: onIdle)
              opened.resume(with: .success(connection))
              await lifetime.wait()
            }
          } catch {}
          opened.resume(with: .failure(OriginError.connectFailed(origin: origin, reason: "connection closed")))
        }
      }
    } catch {
      throw .connectFailed(origin: origin, reason: "\(error)")
    }
  }

  /// Sends a request; returns when the response head arrives. `upload`, when given, is a
  /// body that streams while it is sent. The response timeout runs from the request's end
  /// (`ResponseTimeoutHandler`). On a throw the caller closes the connection.
  func send(head: HTTPRequestHead, body: ByteBuffer?, upload: BodyPipe? = nil) async throws -> OriginResponse {
    var uploading: Upload?
    timedOut.value.store(false, ordering: .releasing)
    do {
      if let upload {
        try await outbound.write(.head(head))
        uploading = Self.startUpload(upload, outbound: outbound, channel: channel)
      } else if let body {
        var head = head
        head.headers.replaceOrAdd(name: "content-length", value: "\(body.readableBytes)")
        try await outbound.write(contentsOf: [.head(head), .body(.byteBuffer(body)), .end(nil)])
      } else {
        try await outbound.write(contentsOf: [.head(head), .end(nil)])
      }
      // The response head (skipping 1xx informational responses).
      while true {
        guard let part = try await inbound.next() else { throw ChannelError.eof }
        guard case .head(let responseHead) = part, responseHead.status.code >= 200 else { continue }
        let answeredEarly = uploading?.abandonIfUnfinished() ?? false
        let exchange = Exchange(
          connection: self, upload: uploading, answeredEarly: answeredEarly,
          keepAlive: responseHead.isKeepAlive && head.isKeepAlive)
        return OriginResponse(head: responseHead, body: OriginBody(exchange: exchange))
      }
    } catch {
      _ = uploading?.abandonIfUnfinished()
      throw error
    }
  }

  /// The next part of the response being read (by its `OriginBody`).
  func nextPart() async throws -> HTTPClientResponsePart? {
    try await inbound.next()
  }

  /// The response was read to its end: back to the pool when the connection can carry
  /// another request, else closed.
  func responseEnded(_ exchange: Exchange) async {
    if let upload = exchange.upload {
      await upload.task.value
      // Part of the request body was never sent: the connection cannot carry another.
      if exchange.answeredEarly || upload.abandoned.value.load(ordering: .acquiring) {
        close()
        return
      }
    }
    guard exchange.keepAlive, usable.load(ordering: .relaxed) else {
      close()
      return
    }
    onIdle(self)
  }

  func close() {
    usable.store(false, ordering: .relaxed)
    channel.close(promise: nil)
    lifetime.end()
  }
}

/// A body being written by its own task while the response is read: an origin may
/// answer before it has read the whole request (an early 413 or 401).
struct Upload: Sendable {
  let pipe: BodyPipe
  let task: Task<Void, Never>
  let finished: Flag
  let abandoned: Flag

  /// The origin answered before the body was all sent: stop sending (the client side
  /// sees its pipe refuse chunks), and close the connection after this response.
  func abandonIfUnfinished() -> Bool {
    guard !finished.value.load(ordering: .acquiring) else { return false }
    abandoned.value.store(true, ordering: .releasing)
    pipe.cancel()
    pipe.finish(error: .connectionFailed(origin: "", reason: "the origin answered before the body was sent"))
    task.cancel()
    return true
  }
}

extension OriginConnection {
  /// Writes the body as the client's side hands it over. A body that fails (the client
  /// went away, or sent too much) closes the connection: the origin must not take a cut
  /// body for a whole one, and with a Content-Length or chunked framing it will not.
  fileprivate static func startUpload(
    _ pipe: BodyPipe, outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>, channel: any Channel
  ) -> Upload {
    let finished = Flag()
    let abandoned = Flag()
    let task = Task {
      do {
        while let chunk = try await pipe.next() { try await outbound.write(.body(.byteBuffer(chunk))) }
        try await outbound.write(.end(nil))
        finished.value.store(true, ordering: .releasing)
      } catch {
        // Abandoned after an early answer: the response is still being read, keep it open.
        if !abandoned.value.load(ordering: .acquiring) {
          abandoned.value.store(true, ordering: .releasing)
          channel.close(promise: nil)
        }
      }
    }
    return Upload(pipe: pipe, task: task, finished: finished, abandoned: abandoned)
  }
}

/// The response parts of one connection. The pool gives a connection to one request at a
/// time, and that request's task alone reads (its head in `send`, then its body), which is
/// what makes the unchecked Sendable sound: reads never overlap.
final class InboundParts: @unchecked Sendable {
  private var iterator: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator

  init(_ iterator: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator) {
    self.iterator = iterator
  }

  func next() async throws -> HTTPClientResponsePart? {
    try await iterator.next()
  }
}

/// Keeps a connection's `executeThenClose` scope open until the connection closes.
final class Lifetime: Sendable {
  private let state = Mutex<(ended: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

  func wait() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let ended = state.withLock { state -> Bool in
        if state.ended { return true }
        state.waiter = continuation
        return false
      }
      if ended { continuation.resume() }
    }
  }

  func end() {
    let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
      state.ended = true
      defer { state.waiter = nil }
      return state.waiter
    }
    waiter?.resume()
  }
}

/// A continuation resumed by the first of several outcomes.
final class OnceContinuation<T: Sendable>: Sendable {
  private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, early: Result<T, any Error>?)>(
    (nil, nil))

  func install(_ continuation: CheckedContinuation<T, any Error>) {
    let early = state.withLock { state -> Result<T, any Error>? in
      if let early = state.early { return early }
      state.continuation = continuation
      return nil
    }
    if let early { continuation.resume(with: early) }
  }

  func resume(with result: Result<T, any Error>) {
    let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
      guard state.early == nil else { return nil }
      state.early = result
      defer { state.continuation = nil }
      return state.continuation
    }
    continuation?.resume(with: result)
  }
}

/// The response timeout, kept on the event loop: armed when a request's end is written
/// (for an upload, once its whole body went out), disarmed when the final response head
/// comes in. When it fires it notes the timeout and closes the connection, which fails the
/// request waiting for the head.
///
/// Why here rather than a timer the request's task schedules and cancels: both of those
/// crossed from the task's thread to the event loop, a wake-up each, on every origin
/// request; here both run on the loop, in the same pass as the write and the read. A head
/// that arrived in time disarms the timer before it can fire, however late the task that
/// reads the head is to run (a loaded machine).
final class ResponseTimeoutHandler: ChannelDuplexHandler {
  typealias InboundIn = HTTPClientResponsePart
  typealias InboundOut = HTTPClientResponsePart
  typealias OutboundIn = HTTPClientRequestPart
  typealias OutboundOut = HTTPClientRequestPart

  private let timeout: TimeAmount
  private let timedOut: Flag
  private var timer: Scheduled<Void>?
  /// The current request's final head came before its end was written (an early answer
  /// to an upload): nothing left to time.
  private var answered = false

  init(timeout: TimeAmount, timedOut: Flag) {
    self.timeout = timeout
    self.timedOut = timedOut
  }

  func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
    switch unwrapOutboundIn(data) {
    case .head: answered = false
    case .end where !answered:
      timer?.cancel()
      let channel = context.channel
      timer = context.eventLoop.scheduleTask(in: timeout) { [timedOut] in
        timedOut.value.store(true, ordering: .releasing)
        channel.close(promise: nil)
      }
    default: break
    }
    context.write(data, promise: promise)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if case .head(let head) = unwrapInboundIn(data), head.status.code >= 200 {
      answered = true
      timer?.cancel()
      timer = nil
    }
    context.fireChannelRead(data)
  }

  func channelInactive(context: ChannelHandlerContext) {
    timer?.cancel()
    timer = nil
    context.fireChannelInactive()
  }
}

/// Closes a connection that saw no read for the configured time (a stuck origin, an
/// idle client), so neither side holds a socket forever.
final class CloseOnIdleHandler: ChannelInboundHandler, Sendable {
  typealias InboundIn = NIOAny

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if event is IdleStateHandler.IdleStateEvent {
      context.close(promise: nil)
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }
}
