import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import EdgeCDN

/// A streamed request body and the response timeout: the timeout bounds the origin's
/// answer once the body is sent, not a slow upload.
@Suite struct OriginUploadTests {
  /// Reads the whole body, then answers with its size (after `delay` for "/stall").
  struct CountingOrigin: HTTPRequestHandler {
    func handle(_ request: ServerRequest, writer: inout ResponseWriter) async throws {
      var bytes = 0
      if let body = request.body { while let chunk = try await body.read() { bytes += chunk.readableBytes } }
      if request.head.uri == "/stall" { try await Task.sleep(for: .seconds(3)) }
      try await writer.respond(status: .ok, text: "got \(bytes)")
    }
  }

  static func upload(chunks: Int, every pause: Duration) -> BodyPipe {
    let pipe = BodyPipe()
    Task {
      for index in 0..<chunks {
        if index > 0 { try? await Task.sleep(for: pause) }
        guard await pipe.send(ByteBuffer(repeating: UInt8(ascii: "u"), count: 1024)) else { return }
      }
      pipe.finish()
    }
    return pipe
  }

  @Test func slowUploadIsNotAnOriginTimeoutButASlowAnswerIs() async throws {
    try await withTimeout(seconds: 60) {
      try await withInProcessOrigin(CountingOrigin(), responseTimeout: .seconds(2)) { client in
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/up")
        head.headers = ["Host": "origin.test", "Transfer-Encoding": "chunked"]
        // 6 chunks over 2.5 s: longer than the response timeout, all of it upload. (The
        // timeout is 2 s, not 1: the in-process origin answers through the cooperative pool,
        // which the suites running beside this one keep busy for over a second at times.)
        let response = try await client.send(head, upload: Self.upload(chunks: 6, every: .milliseconds(500)))
        var text = ""
        while let chunk = try await response.body.read() { text += String(buffer: chunk) }
        #expect(response.head.status == .ok)
        #expect(text == "got 6144")
        // Once the body is sent, an origin slower than the timeout is a 504.
        head.uri = "/stall"
        let outcome: Result<HTTPResponseStatus, OriginError>
        do throws(OriginError) {
          outcome = .success(
            try await client.send(head, upload: Self.upload(chunks: 2, every: .milliseconds(10))).head.status)
        } catch {
          outcome = .failure(error)
        }
        guard case .failure(.timeout) = outcome else {
          Issue.record("expected an origin timeout, got \(outcome)")
          return
        }
      }
    }
  }
}
