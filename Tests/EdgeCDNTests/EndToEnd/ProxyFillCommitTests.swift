import EdgeCDNStore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

@testable import EdgeCDN

/// A miss's response ends only once the fill has committed: a client that received the
/// whole object and asks again must hit, not start a second origin fetch.
@Suite struct ProxyFillCommitTests {
  /// A small body (stored whole, served from the bytes in hand) and a streamed one (read
  /// back from the fill as it comes, its chunks sent one behind: the last waits for the end).
  @Test(arguments: [1, 5])
  func theResponseEndsAfterTheFillCommits(chunks: Int) async throws {
    let parts =
      chunks == 1 ? ["whole body"] : (0..<chunks).map { String(repeating: Character(String($0)), count: 64 << 10) }
    let whole = parts.joined()
    try await withTimeout(seconds: 150) {
      var logger = Logger(label: "edge-cdn-test")
      logger.logLevel = .critical
      let origin = TestOrigin()
      origin.route(
        "/commit",
        reply: OriginReply(
          headers: ["Cache-Control": "max-age=60", "Content-Length": "\(whole.utf8.count)"], chunks: parts))
      let originServer = try await HTTPServer(host: "127.0.0.1", port: 0, handler: origin, logger: logger)
      var configuration = ProxyConfiguration(
        origin: .init(host: "127.0.0.1", port: originServer.localAddress?.port ?? 0),
        listen: .init(host: "127.0.0.1", port: 0))
      configuration.originResponseTimeoutSeconds = 30
      // The commit takes longer than a client needs to ask again.
      let store = SlowCommitStore(
        base: try MemoryStore(configuration: .init(byteBudget: 8 << 20, maxObjectSize: 1 << 20)),
        commitDelay: .milliseconds(500))
      let app = try await EdgeCDNApplication.start(configuration: configuration, store: store, logger: logger)
      // Two clients: the second asks on a connection of its own, which does not wait for the
      // first response's end (a request behind it on the same connection would).
      let clients = (0..<2).map { _ in
        OriginClient(
          configuration: .init(host: "127.0.0.1", port: app.server.localAddress?.port ?? 0),
          group: MultiThreadedEventLoopGroup.singleton)
      }
      // Graceful stops only (see ProxyHarness.run).
      let servers = [Task { try await originServer.run() }, Task { try await app.server.run() }]
      func get(_ client: OriginClient) async throws -> (status: String, body: String) {
        let head = HTTPRequestHead(
          version: .http1_1, method: .GET, uri: "/commit", headers: ["Host": "example.test"])
        let response = try await client.send(head)
        var body = ""
        while let chunk = try await response.body.read() { body += String(buffer: chunk) }
        return (response.head.headers.first(name: "cache-status") ?? "", body)
      }
      let first = try await get(clients[0])
      let second = try await get(clients[1])
      for client in clients { client.shutdown() }
      app.server.beginShutdown()
      originServer.beginShutdown()
      app.proxy.origin.shutdown()
      for server in servers { _ = await server.result }
      #expect(first.body == whole && first.status.contains("fwd=uri-miss"))
      #expect(second.body == whole)
      #expect(second.status.contains("hit"), "asked again after the whole miss response: \(second.status)")
      #expect(origin.count("/commit") == 1)
    }
  }
}

/// A store whose writes take `commitDelay` to commit and whose lookup finds committed
/// objects only, as the disk tier's does (the RAM tier's lookup also finds a write in
/// progress): what the proxy must wait for before it ends a miss's response.
struct SlowCommitStore: Storage {
  let base: MemoryStore
  let commitDelay: Duration
  let committed = Committed()

  final class Committed: Sendable {
    private let keys = Mutex<Set<CacheKey>>([])
    func insert(_ key: CacheKey) { keys.withLock { _ = $0.insert(key) } }
    func contains(_ key: CacheKey) -> Bool { keys.withLock { $0.contains(key) } }
  }

  var supportsStreamingPartialWrite: Bool { base.supportsStreamingPartialWrite }

  func lookup(_ key: CacheKey) async throws(CacheError) -> CacheHit<MemoryHitHandler>? {
    committed.contains(key) ? try await base.lookup(key) : nil
  }

  func lookupStreamingWrite(
    _ key: CacheKey, tag: StreamingWriteTag?
  ) async throws(CacheError) -> CacheHit<MemoryHitHandler>? {
    try await base.lookupStreamingWrite(key, tag: tag)
  }

  func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> SlowCommitMiss {
    SlowCommitMiss(
      base: try await base.missHandler(for: key, meta: meta), commitDelay: commitDelay,
      onCommit: { [committed] in committed.insert(key) })
  }

  func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool {
    try await base.purge(key, reason: reason)
  }

  func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    try await base.updateMeta(key, meta: meta)
  }
}

final class SlowCommitMiss: MissHandler {
  let base: MemoryMissHandler
  let commitDelay: Duration
  let onCommit: @Sendable () -> Void

  init(base: MemoryMissHandler, commitDelay: Duration, onCommit: @escaping @Sendable () -> Void) {
    self.base = base
    self.commitDelay = commitDelay
    self.onCommit = onCommit
  }

  var streamingWriteTag: StreamingWriteTag? { base.streamingWriteTag }

  func writeBody(_ data: ByteBuffer, eof: Bool) async throws(CacheError) { try await base.writeBody(data, eof: eof) }

  func finish() async throws(CacheError) -> MissFinish {
    try? await Task.sleep(for: commitDelay)
    let finished = try await base.finish()
    onCommit()
    return finished
  }

  func abort(reason: String) async { await base.abort(reason: reason) }
}
