import EdgeCDNStore
import NIOCore

/// A whole small body the proxy already holds, read as a cached object is read.
///
/// Why: the leader of a small miss has the whole body from the origin's first read; it
/// serves it from this rather than reading back the write it just made through the
/// store, so the miss costs no streaming read of its own write. Serving it through
/// `HitResponder` keeps the answer the store's would be (304 to a conditional, 206/416
/// for ranges, multipart).
struct BufferedHitHandler: HitHandler {
  let hash: CacheHash
  private let body: ByteBuffer
  private var position = 0
  private var end: Int
  private var seeked = false

  init(hash: CacheHash, body: ByteBuffer) {
    self.hash = hash
    self.body = body
    self.end = body.readableBytes
  }

  mutating func readBody() async throws(CacheError) -> ByteBuffer? {
    guard position < end else { return nil }
    let chunk = body.getSlice(at: body.readerIndex + position, length: end - position)
    position = end
    return chunk
  }

  mutating func finish() async throws(CacheError) {}

  var canSeek: Bool { true }

  /// The store's rules: `end` past the body is clamped, a `start` at or past it is invalid.
  mutating func seek(start: Int, end: Int?) async throws(CacheError) {
    let size = body.readableBytes
    guard start >= 0, start < size, end.map({ $0 > start }) ?? true else {
      throw .invalidRange(key: hash, start: start, end: end, bodySize: size)
    }
    position = start
    self.end = min(end ?? size, size)
    seeked = true
  }

  var shouldCountAccess: Bool { !seeked }

  var evictionWeight: Int { body.readableBytes }
}
