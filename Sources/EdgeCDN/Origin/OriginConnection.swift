import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One keep-alive HTTP/1.1 connection to the origin, serving one request at a time.
///
/// NIOAsyncChannel's streams only live inside `executeThenClose`, so the connection is a
/// task that owns that scope and takes requests from a queue; responses go back through
/// a continuation (the head) and a `BodyPipe` (the body, with backpressure).
final class OriginConnection: Sendable {
  struct Job: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer?
    /// A body that streams while the request is sent; `sent` runs once all of it went out.
    var upload: (pipe: BodyPipe, sent: @Sendable () -> Void)?
    var response: CheckedContinuation<OriginResponse, any Error>
  }

  /// A body being written by its own task while the response is read: an origin may
  /// answer before it has read the whole request (an early 413 or 401).
  fileprivate struct Upload {
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

  let channel: any Channel
  private let jobs: AsyncStream<Job>.Continuation
  private let jobStream: AsyncStream<Job>
  private let usable = Atomic<Bool>(true)
  let origin: String

  var isUsable: Bool { usable.load(ordering: .relaxed) && channel.isActive }

  private init(channel: any Channel, origin: String) {
    self.channel = channel
    self.origin = origin
    (self.jobStream, self.jobs) = AsyncStream.makeStream(of: Job.self)
  }

  static func connect(
    host: String, port: Int, group: any EventLoopGroup, connectTimeout: TimeAmount, readIdleTimeout: TimeAmount,
    onIdle: @escaping @Sendable (OriginConnection) -> Void
  ) async throws(OriginError) -> OriginConnection {
    let origin = "\(host):\(port)"
    let asyncChannel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    do {
      asyncChannel = try await ClientBootstrap(group: group)
        .connectTimeout(connectTimeout)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .connect(host: host, port: port) { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            try channel.pipeline.syncOperations.addHandlers([
              // Reads or writes: an upload that takes longer than this is not idle.
              IdleStateHandler(allTimeout: readIdleTimeout), CloseOnIdleHandler(),
            ])
            return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
              wrappingChannelSynchronously: channel)
          }
        }
    } catch {
      throw .connectFailed(origin: origin, reason: "\(error)")
    }
    let connection = OriginConnection(channel: asyncChannel.channel, origin: origin)
    Task { await connection.run(asyncChannel, onIdle: onIdle) }
    return connection
  }

  /// Sends a request; returns when the response head arrives.
  func send(
    head: HTTPRequestHead, body: ByteBuffer?, upload: (pipe: BodyPipe, sent: @Sendable () -> Void)? = nil
  ) async throws -> OriginResponse {
    try await withCheckedThrowingContinuation { continuation in
      let result = jobs.yield(Job(head: head, body: body, upload: upload, response: continuation))
      if case .enqueued = result { return }
      continuation.resume(throwing: OriginError.connectionFailed(origin: origin, reason: "connection closed"))
    }
  }

  func close() {
    usable.store(false, ordering: .relaxed)
    jobs.finish()
    channel.close(promise: nil)
  }

  private func run(
    _ asyncChannel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>,
    onIdle: @escaping @Sendable (OriginConnection) -> Void
  ) async {
    var pending: Job?
    // The body being streamed: an error ends it too, or its reader would wait forever.
    // (A close mid-body is an error, not an end: NIOHTTP1 reports the truncated body as
    // HTTPParserError.invalidEOFState, so `parts.next()` throws rather than returning nil.)
    var streaming: BodyPipe?
    var uploading: Upload?
    do {
      try await asyncChannel.executeThenClose { inbound, outbound in
        var parts = inbound.makeAsyncIterator()
        for await job in jobStream {
          pending = job
          var head = job.head
          if let upload = job.upload {
            try await outbound.write(.head(head))
            uploading = Self.startUpload(upload.pipe, sent: upload.sent, outbound: outbound, channel: channel)
          } else if let body = job.body {
            head.headers.replaceOrAdd(name: "content-length", value: "\(body.readableBytes)")
            try await outbound.write(contentsOf: [.head(head), .body(.byteBuffer(body)), .end(nil)])
          } else {
            try await outbound.write(contentsOf: [.head(head), .end(nil)])
          }
          // The response head (skipping 1xx informational responses).
          var responseHead: HTTPResponseHead?
          while responseHead == nil {
            guard let part = try await parts.next() else { throw ChannelError.eof }
            if case .head(let h) = part, h.status.code >= 200 { responseHead = h }
          }
          guard let responseHead else { throw ChannelError.eof }
          let answeredEarly = uploading?.abandonIfUnfinished() ?? false
          let pipe = BodyPipe()
          streaming = pipe
          pending = nil
          job.response.resume(returning: OriginResponse(head: responseHead, body: OriginBody(pipe: pipe)))
          var consumerGone = false
          reading: while true {
            guard let part = try await parts.next() else {
              pipe.finish(error: .connectionFailed(origin: origin, reason: "closed mid-body"))
              throw ChannelError.eof
            }
            switch part {
            case .head: continue
            case .body(let chunk):
              if !consumerGone, !(await pipe.send(chunk)) {
                // Nobody wants the rest: closing is cheaper than draining a large body.
                consumerGone = true
                throw ChannelError.outputClosed
              }
            case .end:
              pipe.finish()
              streaming = nil
              break reading
            }
          }
          if let upload = uploading {
            await upload.task.value
            uploading = nil
            // Part of the request body was never sent: the connection cannot carry another.
            if answeredEarly || upload.abandoned.value.load(ordering: .acquiring) { break }
          }
          if !responseHead.isKeepAlive || !job.head.isKeepAlive { break }
          onIdle(self)
        }
      }
    } catch {
      _ = uploading?.abandonIfUnfinished()
      streaming?.finish(error: .connectionFailed(origin: origin, reason: "\(error)"))
      streaming = nil
      pending?.response.resume(
        throwing: OriginError.connectionFailed(origin: origin, reason: "\(error)"))
      pending = nil
    }
    pending?.response.resume(throwing: OriginError.connectionFailed(origin: origin, reason: "connection closed"))
    usable.store(false, ordering: .relaxed)
    jobs.finish()
  }
}

extension OriginConnection {
  /// Writes the body as the client's side hands it over. A body that fails (the client
  /// went away, or sent too much) closes the connection: the origin must not take a cut
  /// body for a whole one, and with a Content-Length or chunked framing it will not.
  fileprivate static func startUpload(
    _ pipe: BodyPipe, sent: @escaping @Sendable () -> Void,
    outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>, channel: any Channel
  ) -> Upload {
    let finished = Flag()
    let abandoned = Flag()
    let task = Task {
      do {
        while let chunk = try await pipe.next() { try await outbound.write(.body(.byteBuffer(chunk))) }
        try await outbound.write(.end(nil))
        finished.value.store(true, ordering: .releasing)
        sent()
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
