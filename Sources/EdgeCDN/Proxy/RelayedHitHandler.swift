import EdgeCDNStore
import NIOCore

/// The leader's read of a fill whose length the origin did not give, or whose length is
/// past what the store lets a reader follow as it is written
/// (`Storage.streamingPartialWriteLimit`): the fill task hands it each origin chunk as it
/// stores it (a `BodyPipe`), instead of the leader reading its own write back.
///
/// Why: a body of unknown length can turn out larger than the store takes. The store's
/// write then fails midway, and a reader of that write was cut there (a chunked 12 MiB
/// body ended at the RAM tier's 8 MiB limit); and past the tiered store's RAM limit a
/// reader follows the write only a disk fragment at a time. The relay goes on whatever
/// the store does, as pingora's miss does, and hands over each chunk as it comes. The
/// price is pingora's too: the fill reads the origin at the leader's pace (the pipe holds
/// a few chunks), so a slow leader slows the waiters, which follow the store's write.
/// Other bodies keep the read-back, which does not couple them.
///
/// Served through `HitResponder` like any hit. A seek skips forward (a single range of a
/// body whose length is known); multipart ranges are not offered (a whole 200 instead).
struct RelayedHitHandler: HitHandler {
  /// Ends the relay when the leader's read goes away however it ends, so that the fill
  /// stops waiting for it and goes on at the origin's pace.
  final class Consumer: Sendable {
    let pipe: BodyPipe
    init(_ pipe: BodyPipe) { self.pipe = pipe }
    deinit { pipe.cancel() }
  }

  let hash: CacheHash
  private let consumer: Consumer
  /// Bytes of the body that went by so far, and the range asked for.
  private var position = 0
  private var start = 0
  private var end: Int?

  init(hash: CacheHash, pipe: BodyPipe) {
    self.hash = hash
    self.consumer = Consumer(pipe)
  }

  mutating func readBody() async throws(CacheError) -> ByteBuffer? {
    while true {
      if let end, position >= end { return nil }
      let next: ByteBuffer?
      do {
        next = try await consumer.pipe.next()
      } catch {
        throw .writerFailed(key: hash, reason: "the origin failed: \(error)")
      }
      guard var chunk = next else { return nil }
      let chunkStart = position
      position += chunk.readableBytes
      if position <= start { continue }
      if chunkStart < start { chunk.moveReaderIndex(forwardBy: start - chunkStart) }
      if let end, position > end {
        chunk = chunk.getSlice(at: chunk.readerIndex, length: chunk.readableBytes - (position - end)) ?? chunk
      }
      return chunk
    }
  }

  mutating func finish() async throws(CacheError) { consumer.pipe.cancel() }

  var canSeek: Bool { position == 0 }

  var canSeekMultipart: Bool { false }

  mutating func seek(start: Int, end: Int?) async throws(CacheError) {
    guard start >= position, end.map({ $0 > start }) ?? true else {
      throw .invalidRange(key: hash, start: start, end: end, bodySize: -1)
    }
    self.start = start
    self.end = end
  }

  var shouldCountAccess: Bool { false }

  var evictionWeight: Int { 0 }
}
