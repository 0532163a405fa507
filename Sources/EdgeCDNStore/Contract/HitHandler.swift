public import NIOCore

/// Reads one stored object's body: pingora's `HandleHit`.
///
/// A value owned by one request task; its methods are `mutating` because the read
/// position is the handler's own state. Chunks are `ByteBuffer`s that share the
/// stored bytes where the tier can (RAM), so a hit copies nothing per chunk.
public protocol HitHandler: Sendable {
  /// The next chunk of the body, or nil at its end (or at the end of the seeked range).
  ///
  /// Reading an object still being written waits, without polling, for more bytes;
  /// if that write fails, this throws `CacheError.writerFailed` instead of ending early.
  mutating func readBody() async throws(CacheError) -> ByteBuffer?

  /// Called once when the response is done; lets a tier count or release things.
  mutating func finish() async throws(CacheError)

  /// Whether `seek` is supported for this object now.
  var canSeek: Bool { get }

  /// Restricts the following reads to bytes [start, end) of the body. `end` past the
  /// body is clamped to it; `start` at or past the end of the body throws `invalidRange`.
  mutating func seek(start: Int, end: Int?) async throws(CacheError)

  /// Whether the handler can be seeked again after reading a range (multipart ranges).
  var canSeekMultipart: Bool { get }

  /// Seeks again for the next part of a multipart range request.
  mutating func seekMultipart(start: Int, end: Int?) async throws(CacheError)

  /// Whether this read should count as an access for eviction (partial reads may not).
  var shouldCountAccess: Bool { get }

  /// The object's weight in bytes, so an eviction manager can start tracking an
  /// object it did not know (after a restart, say).
  var evictionWeight: Int { get }

  /// The rest of the body (to the end, or of the seeked range) as a file region, for a
  /// caller that sends it with sendfile instead of reading it; the read is then at its
  /// end, as if `readBody` had returned every chunk. Nil (the default) when the tier
  /// has no such file for it now: read with `readBody`.
  mutating func takeFileBody() -> FileBody?

  /// The write this handler reads while it is still in progress (its
  /// `MissHandler.streamingWriteTag`); nil for a committed object (the default).
  ///
  /// Why: a store over this tier that may move such a write elsewhere midway (the tiered
  /// store, when a write outgrows RAM and goes on on disk alone) hands the reader over by
  /// this tag, or the reader would be cut where this tier stopped.
  var streamingWriteTag: StreamingWriteTag? { get }
}

extension HitHandler {
  public var canSeekMultipart: Bool { canSeek }

  public mutating func seekMultipart(start: Int, end: Int?) async throws(CacheError) {
    try await seek(start: start, end: end)
  }

  public var shouldCountAccess: Bool { true }

  public mutating func takeFileBody() -> FileBody? { nil }

  public var streamingWriteTag: StreamingWriteTag? { nil }
}
