import EdgeCDN
import Logging
import NIOCore
import Synchronization
import Testing

/// Cancelling `HTTPServer.run` is a graceful shutdown, never a trap: NIO can hold accepted
/// connections the accept loop has not taken yet, and dropping their NIOAsyncChannel
/// unfinished traps the process ("Deinited NIOAsyncWriter without calling finish()",
/// swift-nio#2637).
@Suite struct ServerCancellationTests {
  final class ConnectedCount: Sendable {
    let value = Atomic<Int>(0)
  }

  @Test func cancellingRunWithOpenConnectionsShutsDownGracefully() async throws {
    try await withTimeout(seconds: 60) {
      var logger = Logger(label: "edge-cdn-test")
      logger.logLevel = .critical
      let origin = TestOrigin()
      origin.route("/slow") { _, _ in
        var reply = OriginReply.text("slow")
        reply.delayMilliseconds = 300
        return reply
      }
      let server = try await HTTPServer(
        host: "127.0.0.1", port: 0, handler: origin, limits: .init(drainTimeout: .seconds(5)), logger: logger)
      let port = server.localAddress?.port ?? 0
      let run = Task { try await server.run() }
      // Connections in every state: half a request line, a request in flight, and a burst
      // of fresh ones NIO accepts while the loop is being cancelled.
      let half = try await RawClient(port: port)
      try await half.send("GET /slow HTTP/1.1\r\nHost: x\r\n")
      let busy = try await RawClient(port: port)
      try await busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
      try await Task.sleep(for: .milliseconds(100))
      var burst: [RawClient] = []
      for _ in 0..<20 {
        let client = try await RawClient(port: port)
        try? await client.send("GET /slow HTTP/1.1\r\n")
        burst.append(client)
      }
      run.cancel()
      // run() returns after the drain: the request in flight still gets its answer.
      _ = await run.result
      #expect(busy.text.contains("slow"), "\(busy.text)")
      #expect(!server.isAccepting)
      #expect(try await half.waitFor(milliseconds: 5000) { $0.isClosed })
      for client in burst + [busy] {
        #expect(try await client.waitFor(milliseconds: 5000) { $0.isClosed })
        await client.close()
      }
      await half.close()
    }
  }

  /// Cancels the accept loop while a burst of connections is being accepted: some are then
  /// held by NIO, not yet taken by the loop. Several rounds, as the window is a race.
  @Test func cancellingRunDuringABurstOfConnectionsDoesNotTrap() async throws {
    try await withTimeout(seconds: 60) {
      var logger = Logger(label: "edge-cdn-test")
      logger.logLevel = .critical
      for _ in 0..<10 {
        let server = try await HTTPServer(
          host: "127.0.0.1", port: 0, handler: TestOrigin(), limits: .init(drainTimeout: .seconds(2)),
          logger: logger)
        let port = server.localAddress?.port ?? 0
        let run = Task { try await server.run() }
        let connected = ConnectedCount()
        let clients = Task {
          await withTaskGroup(of: RawClient?.self) { group in
            for _ in 0..<40 {
              group.addTask {
                guard let client = try? await RawClient(port: port) else { return nil }
                try? await client.send("GET / HTTP/1.1\r\nHost: x\r\n")
                connected.value.add(1, ordering: .relaxed)
                return client
              }
            }
            var all: [RawClient] = []
            for await client in group { if let client { all.append(client) } }
            return all
          }
        }
        for _ in 0..<2000 where connected.value.load(ordering: .relaxed) < 10 { await Task.yield() }
        run.cancel()
        _ = await run.result
        #expect(!server.isAccepting)
        for client in await clients.value {
          #expect(try await client.waitFor(milliseconds: 5000) { $0.isClosed })
          await client.close()
        }
      }
    }
  }
}
