import ArgumentParser
import EdgeCDNStore
import NIOCore

#if canImport(Glibc)
  import Glibc
#endif

/// A child process for the crash test: writes objects as fast as it can and says
/// which are finished and which are durable, until it is killed (kill -9).
///
/// Output, one line each, flushed at once: `done <i>` after finish() of object i
/// returned; `durable <i>` after a flush() begun once object i was done returned.
/// Object i's key, size and bytes are functions of i (`DiskCrashObjects`), so the
/// test checks what it finds after reopening without any other channel.
struct DiskCrashWriter: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "disk-crash-writer", abstract: "Writes objects until killed (for the crash test).",
    shouldDisplay: false)

  @Option var path: String
  @Option var regionSize = 256 << 10
  @Option var size = 4096 + 24 * (256 << 10)
  @Option var start = 0
  @Option var count = 1_000_000
  @Option var flushEvery = 7

  func run() async throws {
    let store = try await DiskStore.open(
      configuration: DiskStoreConfiguration(
        path: path, size: size, regionSize: regionSize, fragmentSize: 16 << 10, maxObjectSize: 1 << 20,
        flushIntervalMilliseconds: 20, reinsertion: .none))
    emit("ready")
    for i in start..<(start + count) {
      let body = DiskCrashObjects.body(i)
      let handler = try await store.missHandler(for: DiskCrashObjects.key(i), meta: DiskCrashObjects.meta(i))
      var offset = 0
      repeat {
        let end = min(offset + 5000, body.count)
        try await handler.writeBody(ByteBuffer(bytes: body[offset..<end]), eof: end == body.count)
        offset = end
      } while offset < body.count
      _ = try await handler.finish()
      emit("done \(i)")
      if i % flushEvery == 0 {
        try await store.flush()
        emit("durable \(i)")
      }
    }
    try await store.close()
  }

  /// One line straight to the pipe, unbuffered, so a kill loses nothing printed.
  private func emit(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
  }
}

/// The objects the crash writer writes; DiskCrashTests has the same functions (keep them equal).
enum DiskCrashObjects {
  static func key(_ i: Int) -> CacheKey { CacheKey(namespace: "crash", primary: "object-\(i)") }

  /// Sizes from empty to several fragments, so torn multi-record objects are possible.
  static func size(_ i: Int) -> Int { [0, 100, 3000, 16_384, 20_000, 70_000, 150_000][i % 7] + i % 13 }

  static func body(_ i: Int) -> [UInt8] {
    var state = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 1
    return (0..<size(i)).map { _ in
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return UInt8(truncatingIfNeeded: state >> 33)
    }
  }

  static func meta(_ i: Int) -> CacheMeta {
    let now = CacheTime(millisecondsSinceEpoch: 1_700_000_000_000)
    return CacheMeta(
      freshUntil: now.adding(seconds: 3600), created: now, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0,
      response: .init(status: 200, reason: "OK", fields: [.init("x-object", "\(i)")]), extensions: [])
  }
}
