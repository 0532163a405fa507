public import EdgeCDNStore
public import NIOCore
public import NIOHTTP1

/// Writes one response to a client connection, with the client's backpressure.
///
/// Parts are gathered into one write until `flushThreshold` bytes are pending, so a
/// small response (head, body, end) crosses to the event loop once; a large body still
/// streams in bounded pieces, and `write` suspends while the socket is not writable.
public struct ResponseWriter {
  private let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
  /// The connection, for writes whose completion matters (`writeFile`).
  private let channel: any Channel
  private var pending: [HTTPServerResponsePart] = []
  private var pendingBytes = 0
  /// Whether the connection stays open after this response.
  public private(set) var keepAlive: Bool
  public private(set) var headSent = false
  /// Whether a `100 Continue` went out (see `sendContinueIfExpected`).
  public private(set) var continueSent = false
  /// The status sent, for the access log.
  public private(set) var status: UInt = 0
  public private(set) var bodyBytes = 0
  /// When the head was handed to the connection (with the first flush after it): the
  /// end of the time a request waits for its answer, for the latency histograms.
  public private(set) var headSentAt: ContinuousClock.Instant?
  /// Whether the response's end was written.
  public private(set) var completed = false
  let requestVersion: HTTPVersion
  static let flushThreshold = 64 << 10
  /// Each body chunk goes out as it comes instead of gathering to `flushThreshold`: set for
  /// a body read as the origin sends it (a fill's leader and its waiters, a pass-through),
  /// so that a body trickling in small chunks reaches the client as it comes (gathered, a
  /// 20 KiB body sent 1 KiB every 100 ms reached the client only at its end). With an
  /// `endBarrier`, one chunk behind: each goes out when the next comes and the last with
  /// the end, after the barrier, so a client never holds a whole fill that has not
  /// committed. Without one (a pass-through, a waiter), at once: a stream that pauses (a
  /// long poll, server-sent events) must not hold its last event back.
  public var sendsEachChunk = false
  /// Work the response's end waits for, told whether the response was partial (206). The
  /// leader of a miss sets it to the cache fill, so a client that has the whole response
  /// (and asks again, on any connection) finds the entry committed, never a miss for an
  /// object it has just received: the disk tier's lookup finds committed objects only (the
  /// RAM tier's also finds a write in progress). The wait is short: the body was read from
  /// the fill, which only has its commit left. A range does not wait for the rest of a fill.
  /// A response with no body (HEAD, 304, 204) is whole with its head, which goes out before
  /// the wait: a client that asks again at once may then miss a fill that only disk holds.
  ///
  /// A closure rather than the fill's task, so that it runs only at the end: a relayed
  /// leader first lets go of the relay there (`RelayedHitHandler`), or a fill waiting for
  /// a leader that answered without reading it (HEAD, 304) would wait for ever.
  var endBarrier: (@Sendable (_ partial: Bool) async -> Void)?

  init(
    outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, channel: any Channel, keepAlive: Bool,
    version: HTTPVersion
  ) {
    self.outbound = outbound
    self.channel = channel
    self.keepAlive = keepAlive
    self.requestVersion = version
  }

  /// Closes the connection after this response (before the head: it says so in Connection).
  public mutating func closeAfterResponse() {
    keepAlive = false
  }

  /// Sends `100 Continue` now when the request asked for it (RFC 9110 §10.1.1), as nginx
  /// does when it starts reading a body: a client that sent `Expect: 100-continue` (curl
  /// does for large uploads) otherwise waits about a second before it sends the body.
  /// Nothing for HTTP/1.0, which has no 1xx, nor once the final head is on its way.
  public mutating func sendContinueIfExpected(_ request: HTTPRequestHead) async throws {
    guard !continueSent, !headSent, (request.version.major, request.version.minor) >= (1, 1),
      request.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
    else { return }
    continueSent = true
    try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .continue)))
  }

  /// Sends the head; sets the Connection field to match the keep-alive decision.
  public mutating func writeHead(status: HTTPResponseStatus, headers: HTTPHeaders) {
    var headers = headers
    Self.setConnection(&headers, keepAlive: &keepAlive, requestVersion: requestVersion)
    self.status = status.code
    pending.append(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
    headSent = true
  }

  /// Makes the Connection field match the keep-alive decision, which a response's own
  /// `Connection: close` or an HTTP/1.0 body without a length turns off. Shared with the
  /// event-loop fast path, so both answer alike.
  static func setConnection(_ headers: inout HTTPHeaders, keepAlive: inout Bool, requestVersion: HTTPVersion) {
    if headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "close" }) { keepAlive = false }
    // Without a length, HTTP/1.0 can only delimit the body by closing.
    if requestVersion.minor == 0, !headers.contains(name: "content-length") { keepAlive = false }
    headers.remove(name: "connection")
    if !keepAlive {
      headers.add(name: "Connection", value: "close")
    } else if requestVersion.minor == 0 {
      headers.add(name: "Connection", value: "keep-alive")
    }
  }

  public mutating func writeBody(_ chunk: ByteBuffer) async throws {
    let oneBehind = sendsEachChunk && endBarrier != nil
    if oneBehind, !pending.isEmpty { try await flush() }
    bodyBytes += chunk.readableBytes
    pendingBytes += chunk.readableBytes
    pending.append(.body(.byteBuffer(chunk)))
    if oneBehind { return }  // the newest chunk waits, whatever its size (see `sendsEachChunk`)
    if sendsEachChunk || pendingBytes >= Self.flushThreshold { try await flush() }
  }

  /// Sends a body part from a file (sendfile), after what is gathered, and returns once
  /// it is written: the region's descriptor must stay open until then, and the async
  /// writer tells nobody when a write is done. Why the channel: its writes and the async
  /// writer's reach the event loop in the order they were made (each hops there in
  /// turn), so the region follows the head.
  ///
  /// In slices of `fileSliceBytes`, each awaited: a write is what tells the connection's
  /// idle timer that a slow client is still taking the body, and one region of a large
  /// body would be a single write however long the client takes to drain it.
  public mutating func writeFile(_ body: FileBody) async throws {
    guard body.length > 0 else { return }
    try await flush()
    var sent = 0
    while sent < body.length {
      let slice = FileBody(
        file: body.file, offset: body.offset + sent, length: min(Self.fileSliceBytes, body.length - sent))
      bodyBytes += slice.length
      let lease = slice.lease()
      let written = channel.eventLoop.makePromise(of: Void.self)
      written.futureResult.whenComplete { _ in lease.end() }
      channel.writeAndFlush(HTTPServerResponsePart.body(.fileRegion(lease.region)), promise: written)
      try await written.futureResult.get()
      sent += slice.length
    }
  }

  /// At most this much of a file body per write (see `writeFile`).
  static let fileSliceBytes = 1 << 20

  public mutating func end() async throws {
    if let endBarrier {
      // A response with no body (HEAD, 304, 204) is whole with its head, which goes out
      // first: such a leader of a large fill is not kept waiting for all of it.
      if bodyBytes == 0, !pending.isEmpty { try await flush() }
      await endBarrier(status == 206)
      self.endBarrier = nil
    }
    pending.append(.end(nil))
    try await flush()
    completed = true
  }

  /// Sends what is gathered now (a test origin trickling a body, a server-sent stream).
  public mutating func flushNow() async throws {
    try await flush()
  }

  private mutating func flush() async throws {
    let parts = pending
    pending.removeAll(keepingCapacity: true)
    pendingBytes = 0
    try await outbound.write(contentsOf: parts)
    if headSent, headSentAt == nil { headSentAt = .now }
  }

  /// A complete small response: head, optional text body, end.
  public mutating func respond(
    status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), text: String? = nil, close: Bool = false
  ) async throws {
    if close { keepAlive = false }
    var headers = headers
    let body = text.map { ByteBuffer(string: $0) }
    headers.replaceOrAdd(name: "Content-Length", value: "\(body?.readableBytes ?? 0)")
    if text != nil, !headers.contains(name: "content-type") {
      headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
    }
    writeHead(status: status, headers: headers)
    if let body { try await writeBody(body) }
    try await end()
  }
}
