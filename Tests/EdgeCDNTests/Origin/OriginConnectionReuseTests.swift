import EdgeCDN
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// The request's task reads its response straight from the pooled connection: a body
/// read to its end gives the connection back for the next request, a body dropped early
/// closes it, and a large body arrives whole.
@Suite struct OriginConnectionReuseTests {
  /// Answers with the client's port (which connection it came on), or 1 MiB for "/large".
  struct PortOrigin: HTTPRequestHandler {
    func handle(_ request: ServerRequest, writer: inout ResponseWriter) async throws {
      if request.head.uri == "/large" {
        writer.writeHead(status: .ok, headers: ["Content-Length": "\(1 << 20)"])
        for i in 0..<16 { try await writer.writeBody(ByteBuffer(repeating: UInt8(65 + i), count: 64 << 10)) }
        try await writer.end()
        return
      }
      try await writer.respond(status: .ok, text: "\(request.remoteAddress?.port ?? -1)")
    }
  }

  func fetch(_ client: OriginClient, _ path: String) async throws -> String {
    var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
    head.headers.add(name: "Host", value: "origin.test")
    let response = try await client.send(head)
    var text = ""
    while let chunk = try await response.body.read() { text += String(buffer: chunk) }
    return text
  }

  @Test func bodiesReadToTheEndReuseTheConnectionAndDroppedOnesCloseIt() async throws {
    try await withTimeout(seconds: 120) {
      try await withInProcessOrigin(PortOrigin()) { client in

        // One after the other, read to the end: one connection for all.
        var ports: Set<String> = []
        for _ in 0..<5 { ports.insert(try await fetch(client, "/port")) }
        #expect(ports.count == 1, "\(ports)")

        // A large body arrives whole and in order, on the same connection afterwards.
        let large = try await fetch(client, "/large")
        let expected = (0..<16).map { String(repeating: Character(UnicodeScalar(UInt8(65 + $0))), count: 64 << 10) }
        #expect(large == expected.joined())
        #expect(try await fetch(client, "/port") == ports.first)

        // A body dropped before its end: that connection closes, the next request gets another.
        do {
          var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/large")
          head.headers.add(name: "Host", value: "origin.test")
          let response = try await client.send(head)
          _ = try await response.body.read()
        }
        let after = try await fetch(client, "/port")
        #expect(after != ports.first, "a half-read connection was reused")
        #expect(try await fetch(client, "/port") == after)
      }
    }
  }
}
