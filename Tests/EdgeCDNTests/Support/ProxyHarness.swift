import EdgeCDN
import EdgeCDNStore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// A response as a test sees it: whole body collected.
struct TestResponse: Sendable {
  var status: UInt
  var headers: HTTPHeaders
  var body: String

  subscript(_ name: String) -> String? { headers.first(name: name) }
  var cacheStatus: String { headers.first(name: "cache-status") ?? "" }
}

struct TestTimeout: Error, CustomStringConvertible {
  var seconds: Int
  var description: String { "test did not finish within \(seconds) s" }
}

/// Runs `body` but fails after `seconds`: every e2e test is bounded in time.
///
/// Why not a task group racing a sleep: a group waits for all its children, so a body
/// stuck on a continuation nobody resumes (it ignores cancellation) would hang the
/// test, and with it the whole run, with no test named. Here the body runs in its own
/// task and the caller resumes at the first of: result, deadline, own cancellation;
/// on the deadline the body is cancelled and left behind, and the test fails by name.
func withTimeout<T: Sendable>(
  seconds: Int = 30, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  let race = FirstOutcome<T>()
  return try await withTaskCancellationHandler {
    try await withCheckedThrowingContinuation { continuation in
      race.install(continuation)
      // Unstructured tasks inherit task-local values, so issues the body records
      // are still attributed to the running test.
      let work = Task {
        do { race.offer(.success(try await body())) } catch { race.offer(.failure(error)) }
      }
      let timer = Task {
        try? await Task.sleep(for: .seconds(seconds))
        guard !Task.isCancelled else { return }
        race.offer(.failure(TestTimeout(seconds: seconds)))
        work.cancel()
      }
      race.whenDelivered { timer.cancel() }
    }
  } onCancel: {
    race.offer(.failure(CancellationError()))
  }
}

/// Where the racers of `withTimeout` meet: the first outcome resumes the caller.
final class FirstOutcome<T: Sendable>: Sendable {
  private struct State {
    var continuation: CheckedContinuation<T, any Error>?
    var outcome: Result<T, any Error>?
    var onDelivered: (@Sendable () -> Void)?
  }

  private let state = Mutex(State())

  func install(_ continuation: CheckedContinuation<T, any Error>) {
    let early = state.withLock { state -> Result<T, any Error>? in
      if let outcome = state.outcome { return outcome }
      state.continuation = continuation
      return nil
    }
    if let early { continuation.resume(with: early) }
  }

  /// Runs `action` once an outcome is in (at once when it already is).
  func whenDelivered(_ action: @escaping @Sendable () -> Void) {
    let now = state.withLock { state -> Bool in
      if state.outcome != nil { return true }
      state.onDelivered = action
      return false
    }
    if now { action() }
  }

  func offer(_ outcome: Result<T, any Error>) {
    let (continuation, action) = state.withLock {
      state -> (CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
      guard state.outcome == nil else { return (nil, nil) }
      state.outcome = outcome
      defer {
        state.continuation = nil
        state.onDelivered = nil
      }
      return (state.continuation, state.onDelivered)
    }
    continuation?.resume(with: outcome)
    action?()
  }
}

/// Whole seconds since it was made, rounded up: ttl and age windows are asserted
/// relative to the time really spent, since a loaded machine can stall a test for
/// tens of seconds between two requests.
struct Stopwatch: Sendable {
  private let began = ContinuousClock.now

  var seconds: Int { Int((ContinuousClock.now - began).components.seconds) + 1 }
}

/// An origin, the proxy (MemoryStore) in front of it, and a client, all on loopback.
struct ProxyHarness: Sendable {
  let origin: TestOrigin
  let originServer: HTTPServer<TestOrigin>
  let app: EdgeCDNApplication<MemoryStore>
  let client: OriginClient
  let adminClient: OriginClient?
  let store: MemoryStore
  static let token = "s3cret-token"

  /// `timeout` bounds the whole test; generous because, beside the store's CPU-heavy
  /// debug-build tests on a loaded 2-core machine, an e2e test can wait over a minute for
  /// a thread of the cooperative pool. A test stuck for good still fails, by name.
  static func run(
    timeout: Int = 150, configure: @escaping @Sendable (inout ProxyConfiguration) -> Void = { _ in },
    metrics: (any MetricsExposition)? = nil, proxyMetrics: ProxyMetrics? = nil,
    _ body: @escaping @Sendable (ProxyHarness) async throws -> Void
  ) async throws {
    try await withTimeout(seconds: timeout) {
      var logger = Logger(label: "edge-cdn-test")
      logger.logLevel = .critical
      let origin = TestOrigin()
      // The origin takes uploads of any size the tests send through the proxy.
      let originServer = try await HTTPServer(
        host: "127.0.0.1", port: 0, handler: origin, limits: .init(maxRequestBodyBytes: 1 << 30), logger: logger)
      let originPort = originServer.localAddress?.port ?? 0
      var configuration = ProxyConfiguration(
        origin: .init(host: "127.0.0.1", port: originPort), listen: .init(host: "127.0.0.1", port: 0),
        adminListen: .init(host: "127.0.0.1", port: 0))
      configuration.purgeToken = token
      // Generous: a loaded CI machine stalls the whole process for 10-20 s at times, and
      // must not turn a slow test origin into a 504, a cut body (the read-idle timeout is
      // twice this) or waiters that give up on the cache lock and fetch for themselves.
      configuration.originResponseTimeoutSeconds = 30
      configuration.cacheLockTimeoutMilliseconds = 30_000
      configure(&configuration)
      let store = try MemoryStore(configuration: .init(byteBudget: 64 << 20, maxObjectSize: 8 << 20))
      let app = try await EdgeCDNApplication.start(
        configuration: configuration, store: store, logger: logger, metrics: metrics,
        proxyMetrics: proxyMetrics ?? ProxyMetrics())
      let group = MultiThreadedEventLoopGroup.singleton
      let client = OriginClient(
        configuration: .init(host: "127.0.0.1", port: app.server.localAddress?.port ?? 0), group: group)
      let adminClient = app.admin.map {
        OriginClient(configuration: .init(host: "127.0.0.1", port: $0.localAddress?.port ?? 0), group: group)
      }
      let harness = ProxyHarness(
        origin: origin, originServer: originServer, app: app, client: client, adminClient: adminClient, store: store)
      // The servers run in unstructured tasks and end by a graceful stop, so that a test's
      // requests in flight get their answers. (Cancelling `run` is safe too since
      // HTTPServer turns it into the same graceful stop: ServerCancellationTests.)
      var servers = [Task { try await originServer.run() }, Task { try await app.server.run() }]
      if let admin = app.admin { servers.append(Task { try await admin.run() }) }
      do {
        try await body(harness)
      } catch {
        harness.stop()
        for server in servers { _ = await server.result }
        throw error
      }
      harness.stop()
      for server in servers { try await server.value }
    }
  }

  func stop() {
    client.shutdown()
    adminClient?.shutdown()
    app.server.beginShutdown()
    app.admin?.beginShutdown()
    originServer.beginShutdown()
    app.proxy.origin.shutdown()
  }

  /// Sends a request through the proxy and reads the whole response.
  func request(
    _ path: String, method: HTTPMethod = .GET, headers: HTTPHeaders = [:], via: OriginClient? = nil
  ) async throws -> TestResponse {
    var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
    head.headers = headers
    if !head.headers.contains(name: "host") { head.headers.add(name: "Host", value: "example.test") }
    let response = try await (via ?? client).send(head)
    var body = ""
    while let chunk = try await response.body.read() { body += String(buffer: chunk) }
    return TestResponse(status: response.head.status.code, headers: response.head.headers, body: body)
  }

  func get(_ path: String, _ headers: HTTPHeaders = [:]) async throws -> TestResponse {
    try await request(path, headers: headers)
  }

  func admin(_ path: String, method: HTTPMethod = .GET, headers: HTTPHeaders = [:]) async throws -> TestResponse {
    try await request(path, method: method, headers: headers, via: adminClient)
  }

  /// Writes a 200 entry for GET `uri` straight into the store, `secondsAgo` old and fresh
  /// for 60 s from then (so stale past 60): no origin and no sleeping, whatever the load.
  func store(
    _ uri: String, host: String = "example.test", status: UInt16 = 200, body: ByteBuffer, fields: [CacheMeta.Field],
    secondsAgo: Int64 = 0, initialAge: Int64 = 0
  ) async throws {
    let now = CacheTime.now()
    var ext = EntryExtensions()
    ext.bodySize = body.readableBytes
    ext.initialAge = initialAge
    let meta = CacheMeta(
      freshUntil: now.adding(seconds: 60 - secondsAgo), created: now.adding(seconds: -secondsAgo),
      response: .init(
        status: status, reason: HTTPResponseStatus(statusCode: Int(status)).reasonPhrase, fields: fields),
      extensions: ext.encoded())
    let key = CachingProxy<MemoryStore>.cacheKey(
      for: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: ["Host": host]))
    let writer = try await store.missHandler(for: key, meta: meta)
    try await writer.writeBody(body, eof: true)
    _ = try await writer.finish()
  }

  func store(
    _ uri: String, host: String = "example.test", status: UInt16 = 200, body: String, fields: [CacheMeta.Field],
    secondsAgo: Int64 = 0, initialAge: Int64 = 0
  ) async throws {
    try await store(
      uri, host: host, status: status, body: ByteBuffer(string: body), fields: fields, secondsAgo: secondsAgo,
      initialAge: initialAge)
  }

  /// `count` GETs of `path` at once (coalescing), their responses in completion order.
  func getConcurrently(_ path: String, count: Int) async throws -> [TestResponse] {
    try await withThrowingTaskGroup(of: TestResponse.self) { group in
      for _ in 0..<count { group.addTask { try await get(path) } }
      var all: [TestResponse] = []
      for try await response in group { all.append(response) }
      return all
    }
  }

  /// Waits (bounded) until `condition` holds; fills and background refreshes are async.
  func eventually(_ what: String, _ condition: @Sendable () async -> Bool) async throws {
    for _ in 0..<200 {
      if await condition() { return }
      try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("timed out waiting for \(what)")
  }
}
