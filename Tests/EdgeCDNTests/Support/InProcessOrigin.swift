import EdgeCDN
import Logging
import NIOCore
import NIOPosix

/// Runs `body` with an `OriginClient` to an origin of our own (`HTTPServer` serving
/// `handler` on 127.0.0.1), then shuts both down, also when `body` returns early or throws.
func withInProcessOrigin<Handler: HTTPRequestHandler>(
  _ handler: Handler, responseTimeout: TimeAmount = .seconds(30), _ body: (OriginClient) async throws -> Void
) async throws {
  var logger = Logger(label: "edge-cdn-test")
  logger.logLevel = .critical
  let server = try await HTTPServer(host: "127.0.0.1", port: 0, handler: handler, logger: logger)
  let serving = Task { try await server.run() }
  let client = OriginClient(
    configuration: .init(
      host: "127.0.0.1", port: server.localAddress?.port ?? 0, responseTimeout: responseTimeout),
    group: MultiThreadedEventLoopGroup.singleton)
  do {
    try await body(client)
  } catch {
    client.shutdown()
    server.beginShutdown()
    _ = await serving.result
    throw error
  }
  client.shutdown()
  server.beginShutdown()
  try await serving.value
}
