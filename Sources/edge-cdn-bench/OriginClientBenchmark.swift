import ArgumentParser
import EdgeCDN
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if OriginClientComparison
  import AsyncHTTPClient
#endif

/// `edge-cdn-bench origin-client`: the proxy's own pooled OriginClient against
/// async-http-client, fetching 1 KiB and 1 MiB from an in-process NIO origin (EdgeCDN's
/// HTTPServer) at the same concurrency, on the same event loops.
///
/// async-http-client is built in only with the package trait `OriginClientComparison`
/// (`swift run -c release --traits OriginClientComparison edge-cdn-bench origin-client`),
/// so a default build neither fetches nor builds it; without the trait only OriginClient
/// is measured. On a shared 2-core machine the clients alternate batch by batch (which
/// goes first rotates every round) and each figure is the median over rounds: load that
/// comes and goes hits both alike. CPU is the process's (getrusage), origin included, per
/// request: the origin's share is the same for both, so the difference is the client's.
struct OriginClientBenchmark: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "origin-client",
    abstract: "OriginClient against async-http-client (with --traits OriginClientComparison): req/s, p99, CPU.")

  @Option(help: "Concurrent requests (tasks), and the pool size of both clients.")
  var concurrency: Int = 16

  @Option(help: "Rounds; each runs one batch per client and size.")
  var rounds: Int = 7

  @Option(help: "Requests per batch for 1 KiB (1 MiB batches are a tenth of it).")
  var requests: Int = 4000

  func validate() throws {
    guard concurrency >= 1, rounds >= 1, requests >= 10 else {
      throw ValidationError("--concurrency and --rounds must be >= 1, --requests >= 10")
    }
  }

  /// One client under test: fetches a path and returns the body bytes read.
  struct Contender: Sendable {
    var name: String
    var fetch: @Sendable (String) async throws -> Int
  }

  struct Batch {
    var requestsPerSecond: Double
    var cpuMicrosecondsPerRequest: Double
    var latencies: [Duration]
  }

  func run() async throws {
    var logger = Logger(label: "edge-cdn-bench")
    logger.logLevel = .critical
    let group = MultiThreadedEventLoopGroup.singleton
    let origin = try await HTTPServer(
      host: "127.0.0.1", port: 0, handler: FixedOrigin(), limits: .init(idleTimeout: .seconds(300)), group: group,
      logger: logger)
    let port = origin.localAddress?.port ?? 0
    let serving = Task { try await origin.run() }

    let ours = OriginClient(
      configuration: .init(host: "127.0.0.1", port: port, maxIdleConnections: concurrency), group: group)
    var contenders = [
      Contender(name: "originclient") { path in
        let response = try await ours.send(HTTPRequestHead(version: .http1_1, method: .GET, uri: path))
        var bytes = 0
        while let chunk = try await response.body.read() { bytes += chunk.readableBytes }
        return bytes
      }
    ]
    #if OriginClientComparison
      let theirs = HTTPClient(
        eventLoopGroup: group,
        configuration: .init(
          connectionPool: .init(idleTimeout: .seconds(300), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)),
        backgroundActivityLogger: logger)
      contenders.append(
        Contender(name: "asynchttpclient") { path in
          let response = try await theirs.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(30))
          var bytes = 0
          for try await chunk in response.body { bytes += chunk.readableBytes }
          return bytes
        })
    #else
      print("async-http-client not built in: add --traits OriginClientComparison to compare with it")
    #endif

    let sizes = [("1k", "/1k", 1024, requests), ("1m", "/1m", 1 << 20, max(10, requests / 10))]
    var batches: [String: [Batch]] = [:]
    // Warm-up: connections open, code paged in.
    for contender in contenders {
      for size in sizes { _ = try await Self.batch(contender, path: size.1, bytes: size.2, count: 200, concurrency) }
    }
    for round in 0..<rounds {
      for offset in 0..<contenders.count {
        let contender = contenders[(round + offset) % contenders.count]
        for size in sizes {
          let batch = try await Self.batch(contender, path: size.1, bytes: size.2, count: size.3, concurrency)
          batches["\(contender.name).\(size.0)", default: []].append(batch)
        }
      }
      print("round \(round + 1)/\(rounds) done")
    }

    var report = BenchReport()
    report.record("origin_client.concurrency", concurrency)
    for contender in contenders {
      for size in sizes {
        let key = "\(contender.name).\(size.0)"
        let runs = batches[key] ?? []
        let latencies = runs.flatMap(\.latencies).sorted()
        let p99 = latencies.isEmpty ? Duration.zero : latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
        report.record("origin_client.\(key).rps", Measure.median(runs.map(\.requestsPerSecond)), decimals: 0)
        report.record("origin_client.\(key).p99_ms", Measure.seconds(p99) * 1e3, decimals: 3)
        report.record(
          "origin_client.\(key).cpu_us_per_req", Measure.median(runs.map(\.cpuMicrosecondsPerRequest)), decimals: 1)
      }
    }
    #if OriginClientComparison
      try await theirs.shutdown()
    #endif
    ours.shutdown()
    origin.beginShutdown()
    _ = await serving.result
    report.printFigures()
  }

  /// `count` fetches by `concurrency` tasks, each timed.
  static func batch(
    _ contender: Contender, path: String, bytes: Int, count: Int, _ concurrency: Int
  ) async throws -> Batch {
    let next = Ticket()
    let cpuBefore = ProcessCPUTime.nanoseconds()
    let start = ContinuousClock.now
    let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
      for _ in 0..<concurrency {
        group.addTask {
          var mine: [Duration] = []
          while next.value.add(1, ordering: .relaxed).newValue <= count {
            let began = ContinuousClock.now
            let read = try await contender.fetch(path)
            mine.append(ContinuousClock.now - began)
            guard read == bytes else { throw BenchError.shortBody(expected: bytes, got: read) }
          }
          return mine
        }
      }
      var all: [Duration] = []
      for try await mine in group { all += mine }
      return all
    }
    let elapsed = ContinuousClock.now - start
    let cpu = ProcessCPUTime.nanoseconds() - cpuBefore
    return Batch(
      requestsPerSecond: Double(count) / Measure.seconds(elapsed),
      cpuMicrosecondsPerRequest: Double(cpu) / 1000 / Double(count), latencies: latencies)
  }

  /// Hands out request numbers to the batch's tasks.
  final class Ticket: Sendable {
    let value = Atomic<Int>(0)
  }

  enum BenchError: Error {
    case shortBody(expected: Int, got: Int)
  }
}

/// The in-process origin: fixed bodies with a Content-Length, kept in memory.
struct FixedOrigin: HTTPRequestHandler {
  static let small = ByteBuffer(repeating: UInt8(ascii: "s"), count: 1024)
  static let large = ByteBuffer(repeating: UInt8(ascii: "l"), count: 1 << 20)

  func handle(_ request: ServerRequest, writer: inout ResponseWriter) async throws {
    let body = request.head.uri == "/1m" ? Self.large : Self.small
    writer.writeHead(status: .ok, headers: ["Content-Length": "\(body.readableBytes)"])
    try await writer.writeBody(body)
    try await writer.end()
  }
}
