public import EdgeCDNStore
import NIOCore

/// Assertions and I/O helpers shared by the checks.
public struct ConformanceContext<S: Storage>: Sendable {
  public let check: String
  public let store: S
  public let fixture: StorageFixture<S>
  public let removals: RemovalRecorder

  public func expect(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) throws {
    if !condition { throw ConformanceFailure(check: check, message: message(), line: line) }
  }

  public func fail(_ message: String, line: Int = #line) -> ConformanceFailure {
    ConformanceFailure(check: check, message: message, line: line)
  }

  /// A key unique to this check and `name`.
  public func key(_ name: String) -> CacheKey {
    CacheKey(namespace: "conformance", primary: "\(check)/\(name)")
  }

  public func meta(status: UInt16 = 200, tag: String = "v1") -> CacheMeta {
    let now = CacheTime.now()
    return CacheMeta(
      freshUntil: now.adding(seconds: 3600), created: now, staleWhileRevalidateSeconds: 60, staleIfErrorSeconds: 300,
      response: .init(
        status: status, reason: "OK", fields: [.init("content-type", "application/octet-stream"), .init("etag", tag)]),
      extensions: Array(tag.utf8))
  }

  /// A body whose bytes depend on `seed` and position, so a mix of two bodies or a
  /// shifted slice is detected.
  public static func body(size: Int, seed: UInt8) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: size)
    var state = UInt32(seed) &* 2_654_435_761 &+ 1
    for i in 0..<size {
      state = state &* 1_103_515_245 &+ 12345
      bytes[i] = UInt8(truncatingIfNeeded: state >> 16)
    }
    return bytes
  }

  /// Writes `body` in chunks of `chunkSize` (the last chunk carries eof) and finishes.
  @discardableResult
  public func write(
    _ key: CacheKey, body: [UInt8], meta: CacheMeta? = nil, chunkSize: Int = 4096
  ) async throws -> MissFinish {
    let handler = try await store.missHandler(for: key, meta: meta ?? self.meta())
    try await writeChunks(handler, body: body, chunkSize: chunkSize, eof: true)
    return try await handler.finish()
  }

  public func writeChunks(_ handler: S.Miss, body: [UInt8], chunkSize: Int, eof: Bool) async throws {
    if body.isEmpty {
      if eof { try await handler.writeBody(ByteBuffer(), eof: true) }
      return
    }
    var offset = 0
    while offset < body.count {
      let end = min(offset + max(1, chunkSize), body.count)
      try await handler.writeBody(ByteBuffer(bytes: body[offset..<end]), eof: eof && end == body.count)
      offset = end
    }
  }

  /// Reads the handler to its end.
  public func readAll(_ handler: inout S.Hit) async throws -> [UInt8] {
    var out = [UInt8]()
    while let chunk = try await handler.readBody() { out.append(contentsOf: chunk.readableBytesView) }
    return out
  }

  /// Looks up `key` and reads the whole body; nil on a miss.
  public func readObject(_ key: CacheKey) async throws -> (meta: CacheMeta, body: [UInt8])? {
    guard var hit = try await store.lookup(key) else { return nil }
    let body = try await readAll(&hit.handler)
    try await hit.handler.finish()
    return (hit.meta, body)
  }
}
