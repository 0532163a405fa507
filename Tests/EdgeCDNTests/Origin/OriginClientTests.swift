import EdgeCDN
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// How the origin client ends a body that stops arriving.
@Suite struct OriginClientTests {
  /// An origin that sends the head and part of the body, then closes the connection.
  struct CutShortOrigin: HTTPRequestHandler {
    struct CutShort: Error {}

    func handle(_ request: ServerRequest, writer: inout ResponseWriter) async throws {
      writer.writeHead(status: .ok, headers: ["Content-Length": "20"])
      try await writer.writeBody(ByteBuffer(string: "first chunk"))
      try await writer.flushNow()
      // Throwing after the head makes HTTPServer close the connection.
      throw CutShort()
    }
  }

  /// A connection closed mid-body (a crashing origin, or the read-idle timeout after a
  /// long stall of a loaded machine) must end the body with an error. NIOHTTP1 reports
  /// the truncated body as an error, not as the end of input, and the body's reader used
  /// to wait forever for a chunk: the hang of the whole test run.
  @Test func connectionClosedMidBodyFailsTheReaderInsteadOfHangingIt() async throws {
    try await withTimeout(seconds: 120) {
      try await withInProcessOrigin(CutShortOrigin()) { client in
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/cut")
        head.headers.add(name: "Host", value: "origin.test")
        let response = try await client.send(head)
        #expect(response.head.status == .ok)
        var received = ""
        let outcome: Result<Void, OriginError>
        do throws(OriginError) {
          while let chunk = try await response.body.read() { received += String(buffer: chunk) }
          outcome = .success(())
        } catch {
          outcome = .failure(error)
        }
        guard case .failure(.connectionFailed) = outcome else {
          Issue.record("a body cut short must fail with connectionFailed, got \(outcome) after \"\(received)\"")
          return
        }
        #expect(received == "first chunk")
      }
    }
  }
}
