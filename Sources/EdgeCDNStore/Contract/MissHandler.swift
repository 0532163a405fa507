public import NIOCore

/// Writes one object: pingora's `HandleMiss`.
///
/// A reference type on purpose: a handler released without `finish()` is a failed
/// write, and only a deinit sees that happen. Implementations abort the write there,
/// so nothing of it stays visible and partial readers get `writerFailed`.
public protocol MissHandler: AnyObject, Sendable {
  /// Appends a chunk; `eof` marks the last one (an empty chunk with eof is allowed).
  func writeBody(_ data: ByteBuffer, eof: Bool) async throws(CacheError)

  /// Commits the object; after it returns, lookups see it.
  func finish() async throws(CacheError) -> MissFinish

  /// Fails the write explicitly: nothing is committed and partial readers get an error.
  func abort(reason: String) async

  /// The tag of this write, for `Storage.lookupStreamingWrite`; nil when the tier
  /// does not expose writes in progress.
  var streamingWriteTag: StreamingWriteTag? { get }
}

/// What `MissHandler.finish()` reports, as pingora's `MissFinishType`.
public enum MissFinish: Hashable, Sendable {
  /// A new object of this weight in bytes (body and meta) was stored.
  case created(size: Int)
  /// An existing object grew to `size`; `maxSize` is its final size when known.
  case appended(size: Int, maxSize: Int?)

  /// The object's weight for the eviction manager.
  public var size: Int {
    switch self {
    case .created(let size), .appended(let size, _): size
    }
  }
}
