import NIOCore
import NIOPosix
import Synchronization

/// A TCP client that sends raw bytes and collects what comes back, for what a real HTTP
/// client cannot send: malformed requests, pipelined requests, a client that leaves.
final class RawClient: Sendable {
  private let channel: any Channel
  private let collector: Collector

  final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received = Mutex<[UInt8]>([])
    let closed = Mutex<Bool>(false)
    /// When the connection closed, as its event loop saw it.
    let closedAt = Mutex<NIODeadline?>(nil)
    /// When the last bytes arrived, as the event loop saw it: a test's own task can be
    /// late to look, which would stretch a time measured from there.
    let lastReadAt = Mutex<NIODeadline?>(nil)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      let buffer = unwrapInboundIn(data)
      received.withLock { $0.append(contentsOf: buffer.readableBytesView) }
      lastReadAt.withLock { $0 = .now() }
    }

    func channelInactive(context: ChannelHandlerContext) {
      closedAt.withLock { $0 = .now() }
      closed.withLock { $0 = true }
    }
  }

  /// `autoRead: false` makes a client that never reads: its window (a 64 KiB receive
  /// buffer) closes and the server's writes must wait. A reading client keeps the kernel's
  /// default buffer: it used to ask for 0, which the kernel takes as its minimum (about
  /// 4.5 KB), and a 1 MiB response to such a window, with the sender's and the receiver's
  /// small-window avoidance and the persist timer's backoff, took over 20 s under load.
  /// `receiveBuffer`: a reading client's receive buffer, to make the server's writes wait
  /// on it (a client that leaves mid-body).
  init(port: Int, autoRead: Bool = true, receiveBuffer: Int? = nil) async throws {
    let collector = Collector()
    self.collector = collector
    var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .channelOption(.autoRead, value: autoRead)
    if let size = receiveBuffer ?? (autoRead ? nil : 64 << 10) {
      bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: size)
    }
    self.channel =
      try await bootstrap
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
      }
      .connect(host: "127.0.0.1", port: port).get()
  }

  /// Starts reading (a client made with `autoRead: false` that comes back).
  func startReading() async throws {
    try await channel.setOption(.autoRead, value: true).get()
  }

  func send(_ text: String) async throws {
    try await channel.writeAndFlush(ByteBuffer(string: text)).get()
  }

  func send(_ buffer: ByteBuffer) async throws {
    try await channel.writeAndFlush(buffer).get()
  }

  /// Sends `count` bytes of `byte` in pieces of `piece` bytes, each written to the kernel
  /// before the next (so a stalled peer stalls the sender, as a real client).
  func send(repeating byte: UInt8, count: Int, piece: Int = 64 << 10) async throws {
    var left = count
    while left > 0 {
      let n = min(piece, left)
      try await send(ByteBuffer(repeating: byte, count: n))
      left -= n
    }
  }

  /// Writes `text` `count` times, `interval` apart, from the connection's event loop, so
  /// that a starved cooperative pool (which stalls a test's task for seconds on a loaded
  /// machine) does not space the writes out. Returns when each was written, as the loop saw it.
  func send(_ text: String, count: Int, every interval: TimeAmount) async throws -> [NIODeadline] {
    let channel = self.channel
    let loop = channel.eventLoop
    let promise = loop.makePromise(of: [NIODeadline].self)
    let request = ByteBuffer(string: text)
    @Sendable func write(_ sent: [NIODeadline]) {
      channel.writeAndFlush(request, promise: nil)
      let sent = sent + [.now()]
      guard sent.count < count else { return promise.succeed(sent) }
      loop.scheduleTask(in: interval) { write(sent) }
    }
    loop.execute { write([]) }
    return try await promise.futureResult.get()
  }

  var closedAt: NIODeadline? { collector.closedAt.withLock { $0 } }

  var text: String { String(decoding: collector.received.withLock { $0 }, as: UTF8.self) }
  /// Bytes received so far, without decoding them (`text` decodes everything on each call,
  /// which polled every 10 ms over megabytes loads a busy machine).
  var receivedCount: Int { collector.received.withLock { $0.count } }
  /// Whether what was received ends with `suffix`, without decoding the rest.
  func receivedEnds(with suffix: String) -> Bool {
    let tail = Array(suffix.utf8)
    return collector.received.withLock { $0.count >= tail.count && Array($0.suffix(tail.count)) == tail }
  }
  var isClosed: Bool { collector.closed.withLock { $0 } }

  /// Waits (bounded) until `condition` holds on what was received.
  func waitFor(milliseconds: Int = 3000, _ condition: (RawClient) -> Bool) async throws -> Bool {
    for _ in 0..<(milliseconds / 10) {
      if condition(self) { return true }
      try await Task.sleep(for: .milliseconds(10))
    }
    return condition(self)
  }

  func close() async {
    try? await channel.close()
  }
}
