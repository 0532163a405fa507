import EdgeCDNStore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import TestSupport
import Testing

@testable import EdgeCDN

/// The proxy on RAM over disk, as the embedded default store runs, with objects larger
/// than RAM's maximum object size: RAM's write is dropped midway, disk's goes on, and the
/// client reading the fill must still get the whole body (it was cut where RAM stopped).
@Suite struct ProxyTieredTests {
  /// 1 MiB in 64 chunks, each its own text so that a misplaced chunk shows.
  static let chunks = (0..<64).map { index in String(repeating: String(String(10_000 + index).suffix(4)), count: 4096) }
  static let body = chunks.joined()

  @Test(arguments: [true, false])
  func aMissLargerThanRAMReachesTheClientWhole(withContentLength: Bool) async throws {
    try await withTimeout(seconds: 150) {
      var logger = Logger(label: "edge-cdn-test")
      logger.logLevel = .critical
      let origin = TestOrigin()
      var headers: HTTPHeaders = ["Cache-Control": "max-age=60"]
      if withContentLength { headers.add(name: "Content-Length", value: "\(Self.body.utf8.count)") }
      origin.route("/large", reply: OriginReply(headers: headers, chunks: Self.chunks))
      let originServer = try await HTTPServer(host: "127.0.0.1", port: 0, handler: origin, logger: logger)
      var configuration = ProxyConfiguration(
        origin: .init(host: "127.0.0.1", port: originServer.localAddress?.port ?? 0),
        listen: .init(host: "127.0.0.1", port: 0))
      configuration.originResponseTimeoutSeconds = 30
      let folder = try TemporaryDirectory()
      let disk = try await DiskStore.open(
        configuration: DiskStoreConfiguration(
          path: folder.path, size: 64 << 20, regionSize: 4 << 20, fragmentSize: 64 << 10, maxObjectSize: 8 << 20,
          flushIntervalMilliseconds: 50))
      let store = TieredStore(
        memory: try MemoryStore(configuration: .init(byteBudget: 8 << 20, maxObjectSize: 64 << 10)), disk: disk)
      let app = try await EdgeCDNApplication.start(configuration: configuration, store: store, logger: logger)
      let client = OriginClient(
        configuration: .init(host: "127.0.0.1", port: app.server.localAddress?.port ?? 0),
        group: MultiThreadedEventLoopGroup.singleton)
      let servers = [Task { try await originServer.run() }, Task { try await app.server.run() }]
      func get() async throws -> (status: String, body: String) {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/large", headers: ["Host": "example.test"])
        let response = try await client.send(head)
        var body = ""
        while let chunk = try await response.body.read() { body += String(buffer: chunk) }
        return (response.head.headers.first(name: "cache-status") ?? "", body)
      }
      let first = try await get()
      let second = try await get()
      client.shutdown()
      app.server.beginShutdown()
      originServer.beginShutdown()
      app.proxy.origin.shutdown()
      for server in servers { _ = await server.result }
      let key = RequestKey.of(
        HTTPRequestHead(version: .http1_1, method: .GET, uri: "/large", headers: ["Host": "example.test"]))
      let inMemory = try await store.memoryTier.lookup(key) != nil
      let onDisk = try await disk.lookup(key) != nil
      await store.shutdown()
      try await disk.close()
      #expect(first.body.utf8.count == Self.body.utf8.count, "the miss's body: \(first.status)")
      #expect(first.body == Self.body)
      #expect(first.status.contains("stored"), "\(first.status)")
      #expect(second.body == Self.body)
      #expect(second.status.contains("hit"), "from disk: \(second.status)")
      #expect(!inMemory, "too large for RAM")
      #expect(onDisk)
      #expect(origin.count("/large") == 1)
    }
  }
}
