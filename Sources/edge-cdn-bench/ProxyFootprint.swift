import ArgumentParser
import EdgeCDN
import EdgeCDNStore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// `edge-cdn-bench proxy-footprint`: RSS per small object of edge-cdn itself, filled
/// through its listener from an in-process origin, against what its RAM tier charges.
///
/// Why in process: the RAM tier's own figure (`memory`) misses what the proxy keeps per
/// object (the serialised response head in the entry's memo, a body arriving as a slice
/// of a socket read buffer, field strings parsed from the wire). One process runs the
/// origin (nginx's eight fields on a 1 KiB body), the proxy (RAM only, `TieredStore` over
/// a `MemoryStore` as edge-cdn builds it without a disk) and the client, all on loopback;
/// every key is fetched twice, a miss that fills and a fast-path hit that keeps the head.
/// RSS is read with the heap trimmed, before and after, as the disk bench does.
struct ProxyFootprint: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "proxy-footprint",
    abstract: "edge-cdn filled with 1 KiB objects from an in-process origin: RSS per object against charged bytes.")

  @Option(help: "Distinct 1 KiB objects to fill.")
  var objects: Int = 50_000

  @Option(help: "Concurrent client requests.")
  var concurrency: Int = 16

  @Option(help: "RAM tier byte budget in MiB (large enough to hold every object).")
  var memoryMiB: Int = 1024

  func validate() throws {
    guard objects >= 1000, concurrency >= 1, memoryMiB >= 16 else {
      throw ValidationError("--objects must be >= 1000, --concurrency >= 1, --memory-mib >= 16")
    }
  }

  func run() async throws {
    var logger = Logger(label: "edge-cdn-bench")
    logger.logLevel = .critical
    let group = MultiThreadedEventLoopGroup.singleton
    let origin = try await HTTPServer(
      host: "127.0.0.1", port: 0, handler: NginxLikeOrigin(), limits: .init(idleTimeout: .seconds(300)), group: group,
      logger: logger)
    let originServing = Task { try await origin.run() }
    let memory = try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: memoryMiB << 20, maxObjectSize: 1 << 20))
    let store = TieredStore<MemoryStore, DiskStore>(memory: memory, disk: nil)
    let configuration = ProxyConfiguration(
      origin: .init(host: "127.0.0.1", port: origin.localAddress?.port ?? 0), listen: .init(host: "127.0.0.1", port: 0))
    let app = try await EdgeCDNApplication.start(
      configuration: configuration, store: store, group: group, logger: logger)
    let proxyServing = Task { try await app.server.run() }
    let client = OriginClient(
      configuration: .init(
        host: "127.0.0.1", port: app.server.localAddress?.port ?? 0, maxIdleConnections: concurrency),
      group: group)

    // Warm-up, not counted: connections, code, every thread's arena.
    let warm = min(2000, objects / 10)
    try await Self.fetchAll(client, prefix: "/warm/", count: warm, concurrency: concurrency)
    try await Self.fetchAll(client, prefix: "/warm/", count: warm, concurrency: concurrency)
    DiskBenchmark.trim()
    let before = DiskBenchmark.residentBytes()
    let chargedBefore = memory.usedBytes
    let objectsBefore = memory.objectCount
    // Misses first (each fill completes in its own task), then one hit each.
    try await Self.fetchAll(client, prefix: "/o/", count: objects, concurrency: concurrency)
    try await Task.sleep(for: .milliseconds(200))
    try await Self.fetchAll(client, prefix: "/o/", count: objects, concurrency: concurrency)
    DiskBenchmark.trim()
    let after = DiskBenchmark.residentBytes()
    let filled = memory.objectCount - objectsBefore

    client.shutdown()
    app.server.beginShutdown()
    origin.beginShutdown()
    _ = await proxyServing.result
    _ = await originServing.result

    var report = BenchReport()
    report.record("proxy.footprint_objects", filled)
    report.record("proxy.rss_bytes_per_object", Double(after - before) / Double(max(filled, 1)), decimals: 0)
    report.record(
      "proxy.charged_bytes_per_object", Double(memory.usedBytes - chargedBefore) / Double(max(filled, 1)), decimals: 0)
    report.printFigures()
  }

  /// GETs `prefix` + 0..<count from `concurrency` tasks; fails on a short body.
  static func fetchAll(_ client: OriginClient, prefix: String, count: Int, concurrency: Int) async throws {
    let next = OriginClientBenchmark.Ticket()
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<concurrency {
        group.addTask {
          while true {
            let index = next.value.add(1, ordering: .relaxed).oldValue
            guard index < count else { return }
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "\(prefix)\(index)")
            head.headers.add(name: "Host", value: "bench.example")
            let response = try await client.send(head)
            var bytes = 0
            while let chunk = try await response.body.read() { bytes += chunk.readableBytes }
            guard bytes == NginxLikeOrigin.body.readableBytes else {
              throw OriginClientBenchmark.BenchError.shortBody(expected: NginxLikeOrigin.body.readableBytes, got: bytes)
            }
          }
        }
      }
      try await group.waitForAll()
    }
  }
}

/// An origin answering as nginx does for a static file: its eight fields, 1 KiB, cacheable.
struct NginxLikeOrigin: HTTPRequestHandler {
  static let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: 1024)

  func handle(_ request: ServerRequest, writer: inout ResponseWriter) async throws {
    let now = CacheTime.now().secondsSinceEpoch
    let tag = String(UInt32(truncatingIfNeeded: request.head.uri.hashValue), radix: 16)
    writer.writeHead(
      status: .ok,
      headers: [
        "Server": "nginx/1.22.1", "Date": HTTPDate.format(secondsSinceEpoch: now),
        "Content-Type": "application/octet-stream", "Content-Length": "\(Self.body.readableBytes)",
        "Last-Modified": HTTPDate.format(secondsSinceEpoch: now - 600), "ETag": "\"6929cf40-\(tag)\"",
        "Cache-Control": "public, max-age=3600", "Accept-Ranges": "bytes",
      ])
    try await writer.writeBody(Self.body)
    try await writer.end()
  }
}
