import EdgeCDN
import EdgeCDNStore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
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
func withTimeout<T: Sendable>(
  seconds: Int = 30, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  try await withThrowingTaskGroup(of: T.self) { group in
    group.addTask { try await body() }
    group.addTask {
      try await Task.sleep(for: .seconds(seconds))
      throw TestTimeout(seconds: seconds)
    }
    defer { group.cancelAll() }
    guard let first = try await group.next() else { throw TestTimeout(seconds: seconds) }
    return first
  }
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

  static func run(
    timeout: Int = 60, configure: @escaping @Sendable (inout ProxyConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (ProxyHarness) async throws -> Void
  ) async throws {
    try await withTimeout(seconds: timeout) {
      var logger = Logger(label: "edge-cdn-test")
      logger.logLevel = .critical
      let origin = TestOrigin()
      let originServer = try await HTTPServer(host: "127.0.0.1", port: 0, handler: origin, logger: logger)
      let originPort = originServer.localAddress?.port ?? 0
      var configuration = ProxyConfiguration(
        origin: .init(host: "127.0.0.1", port: originPort), listen: .init(host: "127.0.0.1", port: 0),
        adminListen: .init(host: "127.0.0.1", port: 0))
      configuration.purgeToken = token
      // Generous: a loaded CI machine must not turn a slow test origin into a 504.
      configuration.originResponseTimeoutSeconds = 5
      configure(&configuration)
      let store = try MemoryStore(configuration: .init(byteBudget: 64 << 20, maxObjectSize: 8 << 20))
      let app = try await EdgeCDNApplication.start(configuration: configuration, store: store, logger: logger)
      let group = MultiThreadedEventLoopGroup.singleton
      let client = OriginClient(
        configuration: .init(host: "127.0.0.1", port: app.server.localAddress?.port ?? 0), group: group)
      let adminClient = app.admin.map {
        OriginClient(configuration: .init(host: "127.0.0.1", port: $0.localAddress?.port ?? 0), group: group)
      }
      let harness = ProxyHarness(
        origin: origin, originServer: originServer, app: app, client: client, adminClient: adminClient, store: store)
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await originServer.run() }
        group.addTask { try await app.server.run() }
        if let admin = app.admin { group.addTask { try await admin.run() } }
        do {
          try await body(harness)
        } catch {
          harness.stop()
          group.cancelAll()
          throw error
        }
        harness.stop()
        try await group.waitForAll()
      }
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

  /// Waits (bounded) until `condition` holds; fills and background refreshes are async.
  func eventually(_ what: String, _ condition: @Sendable () async -> Bool) async throws {
    for _ in 0..<200 {
      if await condition() { return }
      try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("timed out waiting for \(what)")
  }
}
