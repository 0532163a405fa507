public import NIOCore

/// A store that can answer some lookups at once, without suspending: a complete object
/// resident in RAM, small enough to hand over whole.
///
/// Why: a cache server's hottest path is a fresh RAM hit. Served through the async
/// `lookup` it pays a task, a hop off the event loop and back, and an async hit handler
/// per request; answered synchronously it can be written by the event loop that read
/// the request. Optional: a store without it, or any lookup it declines, goes the
/// ordinary way.
public protocol ImmediateLookup: Sendable {
  /// The complete object of `key` when it is in RAM now, its body is at most
  /// `maxBodyBytes`, and `accept` agrees to its meta; else nil.
  ///
  /// Nil means "ask `lookup`", never "miss": nothing is counted and no eviction state
  /// changes. A non-nil answer is a hit in every respect (eviction access, hit and
  /// byte counters), as `lookup` plus a whole read of the body would be; `readsBody`
  /// false (HEAD) counts no body bytes, as a lookup whose body is never read.
  ///
  /// `accept` runs before anything is counted, so the caller can decline an object it
  /// would not serve from here (stale, an entry of its own bookkeeping, one whose
  /// rendering it keeps in the memo and finds unfit) at no cost. It sees the meta, the
  /// body's size and the stored version's memo (see `ImmediateHit.memo`).
  func immediateLookup(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?) -> Bool
  ) -> ImmediateHit?

  /// The same answer as `immediateLookup`, handed over in place: `accept` decides as
  /// there (nothing counted yet), also seeing the memo's value when the store can lend it
  /// (`kept`, else nil: ask `memo`); then, the hit taken, `serve` sees the body's chunks,
  /// or its `FileBody` (no chunks) when the store keeps it in a file. Both see what the
  /// store holds, borrowed for the call: nothing is copied out. Returns whether `serve`
  /// ran; the hit is counted by then.
  ///
  /// Why: a hot object is read by every event loop at once, and every reference copied
  /// out of the store (the meta's arrays, the body's list, the memo) is a retain and a
  /// release on a cache line all those cores write. A caller that renders the response
  /// within the call needs none of those copies.
  func immediateServe(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?, _ kept: AnyObject?) -> Bool,
    serve: (_ body: [ByteBuffer], _ file: FileBody?) -> Void
  ) -> Bool
}

extension ImmediateLookup {
  /// Through `immediateLookup`, its hit copied out; `kept` is nil.
  public func immediateServe(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?, _ kept: AnyObject?) -> Bool,
    serve: (_ body: [ByteBuffer], _ file: FileBody?) -> Void
  ) -> Bool {
    let hit = immediateLookup(key, maxBodyBytes: maxBodyBytes, readsBody: readsBody) { accept($0, $1, $2, nil) }
    guard let hit else { return false }
    serve(hit.body, hit.fileBody)
    return true
  }
}

/// An object handed over whole: its meta and its body as the store holds it (shared
/// buffers, no copy), in order; or, for a body the store keeps in a file, `fileBody`
/// (then `body` is empty), to be sent as a file region.
public struct ImmediateHit: Sendable {
  public var meta: CacheMeta
  public var body: [ByteBuffer]
  public var bodySize: Int
  /// The whole body as a file region; when set, `body` is empty.
  public var fileBody: FileBody?
  /// The stored version's memo, where the caller may keep what it derives from `meta`
  /// (a serialised response head); nil when the store keeps none.
  public var memo: (any EntryMemo)?

  public init(
    meta: CacheMeta, body: [ByteBuffer], bodySize: Int, memo: (any EntryMemo)? = nil, fileBody: FileBody? = nil
  ) {
    self.meta = meta
    self.body = body
    self.bodySize = bodySize
    self.memo = memo
    self.fileBody = fileBody
  }
}
