/// The one error type of the storage contract. Each case says what went wrong and,
/// where an object is involved, names it by hash so logs can be joined with metrics.
public enum CacheError: Error, Hashable, Sendable, CustomStringConvertible {
  /// Stored metadata could not be decoded (truncated, garbage, or a version from the future).
  case corruptMetadata(key: CacheHash?, reason: String)
  /// A stored body failed its integrity check; the object is treated as a miss.
  case corruptBody(key: CacheHash, reason: String)
  /// seek(start:end:) outside the body, or with end before start.
  case invalidRange(key: CacheHash, start: Int, end: Int?, bodySize: Int)
  /// The write this reader follows failed or was abandoned before eof.
  case writerFailed(key: CacheHash, reason: String)
  /// The object is larger than the tier accepts.
  case objectTooLarge(key: CacheHash, size: Int, limit: Int)
  /// No room could be made within the tier's byte budget.
  case insufficientSpace(key: CacheHash, needed: Int, budget: Int)
  /// An operation the handler's state does not allow (write after eof, finish twice...).
  case invalidState(key: CacheHash, reason: String)
  /// An I/O call failed; `errno` is the system's code when there is one.
  case io(key: CacheHash?, operation: String, path: String, errno: Int32?)
  /// The tier cannot serve now (closed, failed health, circuit open).
  case unavailable(tier: String, reason: String)
  /// The task was cancelled while waiting on the store.
  case cancelled(key: CacheHash?)

  /// The object the error is about, if any.
  public var key: CacheHash? {
    switch self {
    case .corruptMetadata(let key, _), .io(let key, _, _, _), .cancelled(let key): key
    case .corruptBody(let key, _), .invalidRange(let key, _, _, _), .writerFailed(let key, _),
      .objectTooLarge(let key, _, _), .insufficientSpace(let key, _, _), .invalidState(let key, _):
      key
    case .unavailable: nil
    }
  }

  /// A short stable name for the kind of error, used as a metrics label.
  public var kind: String {
    switch self {
    case .corruptMetadata: "corrupt_metadata"
    case .corruptBody: "corrupt_body"
    case .invalidRange: "invalid_range"
    case .writerFailed: "writer_failed"
    case .objectTooLarge: "object_too_large"
    case .insufficientSpace: "insufficient_space"
    case .invalidState: "invalid_state"
    case .io: "io"
    case .unavailable: "unavailable"
    case .cancelled: "cancelled"
    }
  }

  public var description: String {
    let about = key.map { " (key \($0.hex))" } ?? ""
    switch self {
    case .corruptMetadata(_, let reason): return "corrupt cache metadata: \(reason)\(about)"
    case .corruptBody(_, let reason): return "corrupt cached body: \(reason)\(about)"
    case .invalidRange(_, let start, let end, let size):
      return "range start \(start) end \(end.map(String.init) ?? "open") is invalid for a body of \(size) bytes\(about)"
    case .writerFailed(_, let reason): return "the write being read failed: \(reason)\(about)"
    case .objectTooLarge(_, let size, let limit):
      return "object of \(size) bytes exceeds the maximum object size of \(limit) bytes\(about)"
    case .insufficientSpace(_, let needed, let budget):
      return "no room for \(needed) more bytes within a budget of \(budget) bytes\(about)"
    case .invalidState(_, let reason): return "invalid use of a cache handler: \(reason)\(about)"
    case .io(_, let operation, let path, let errno):
      return "\(operation) failed on \(path)\(errno.map { " (errno \($0))" } ?? "")\(about)"
    case .unavailable(let tier, let reason): return "\(tier) tier unavailable: \(reason)"
    case .cancelled: return "cancelled while waiting on the cache\(about)"
    }
  }
}
