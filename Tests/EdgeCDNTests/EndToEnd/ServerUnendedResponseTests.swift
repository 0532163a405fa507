import EdgeCDN
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// A handler that returns without ending its response leaves the pipelining handler
/// waiting for that end: nothing more can be served on the connection, and the idle timer
/// takes the connection for the server's turn. The server closes it instead of holding it
/// for ever.
@Suite struct ServerUnendedResponseTests {
  /// Writes a head (for `/head-only`) or nothing, and returns without `end()`.
  struct Unending: HTTPRequestHandler {
    func handle(_ request: ServerRequest, writer: inout ResponseWriter) async throws {
      if request.head.uri == "/head-only" {
        writer.writeHead(status: .ok, headers: ["Content-Length": "5"])
        try await writer.flushNow()
      }
    }
  }

  @Test(arguments: ["/nothing", "/head-only"])
  func aResponseNotEndedClosesTheConnection(path: String) async throws {
    try await withTimeout(seconds: 60) {
      var logger = Logger(label: "edge-cdn-test")
      logger.logLevel = .critical
      // A long idle timeout: the close must come from the server seeing the unended
      // response, not from the timer.
      let server = try await HTTPServer(
        host: "127.0.0.1", port: 0, handler: Unending(), limits: .init(idleTimeout: .seconds(600)), logger: logger)
      let run = Task { try await server.run() }
      let client = try await RawClient(port: server.localAddress?.port ?? 0)
      try await client.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
      #expect(try await client.waitFor(milliseconds: 10_000) { $0.isClosed }, "\(path): the connection stays open")
      await client.close()
      server.beginShutdown()
      _ = await run.result
    }
  }
}
