import EdgeCDN
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// What the in-process origin answers for one request.
struct OriginReply: Sendable {
  var status: HTTPResponseStatus = .ok
  var headers: HTTPHeaders = [:]
  var chunks: [String] = []
  /// Before the head: to make requests overlap (coalescing) or time out.
  var delayMilliseconds: Int64 = 0
  /// Between body chunks: to keep a body streaming while clients read it.
  var chunkDelayMilliseconds: Int64 = 0
  /// Hangs up after this many body chunks (0: right after the head), whatever the head
  /// promised: an origin that dies mid-response.
  var hangUpAfterChunks: Int?

  static func text(_ body: String, _ headers: HTTPHeaders = [:], status: HTTPResponseStatus = .ok) -> OriginReply {
    var headers = headers
    headers.replaceOrAdd(name: "Content-Length", value: "\(body.utf8.count)")
    return OriginReply(status: status, headers: headers, chunks: [body])
  }
}

/// An origin on 127.0.0.1:0 whose routes the test sets, counting requests per path.
final class TestOrigin: HTTPRequestHandler {
  typealias Route = @Sendable (ServerRequest, Int) async -> OriginReply

  private let routes = Mutex<[String: Route]>([:])
  private let counts = Mutex<[String: Int]>([:])
  let lastRequest = Mutex<HTTPRequestHead?>(nil)
  /// Body chunks the origin managed to hand to its socket, all paths together.
  let chunksWritten = Mutex(0)

  func route(_ path: String, _ route: @escaping Route) {
    routes.withLock { $0[path] = route }
  }

  func route(_ path: String, reply: OriginReply) {
    route(path) { _, _ in reply }
  }

  func count(_ path: String) -> Int { counts.withLock { $0[path] ?? 0 } }

  func handle(_ request: ServerRequest, writer: inout ResponseWriter) async throws {
    let path = String(request.head.uri.split(separator: "?", maxSplits: 1).first ?? "")
    let n = counts.withLock { counts -> Int in
      counts[path, default: 0] += 1
      return counts[path] ?? 0
    }
    lastRequest.withLock { $0 = request.head }
    guard let route = routes.withLock({ $0[path] }) else {
      try await writer.respond(status: .notFound, text: "no route\n")
      return
    }
    let reply = await route(request, n)
    if reply.delayMilliseconds > 0 { try await Task.sleep(for: .milliseconds(reply.delayMilliseconds)) }
    writer.writeHead(status: reply.status, headers: reply.headers)
    if request.head.method != .HEAD {
      for (index, chunk) in reply.chunks.enumerated() {
        if index == reply.hangUpAfterChunks { break }
        if index > 0, reply.chunkDelayMilliseconds > 0 {
          try await Task.sleep(for: .milliseconds(reply.chunkDelayMilliseconds))
        }
        try await writer.writeBody(ByteBuffer(string: chunk))
        if reply.chunkDelayMilliseconds > 0 { try await writer.flushNow() }
        chunksWritten.withLock { $0 += 1 }
      }
    }
    if reply.hangUpAfterChunks != nil {
      // Throwing after the head closes the connection (HTTPRequestHandler's contract).
      try await writer.flushNow()
      throw HangUp()
    }
    try await writer.end()
  }
}

/// What `OriginReply.hangUpAfterChunks` throws to make the server close the connection.
struct HangUp: Error {}
