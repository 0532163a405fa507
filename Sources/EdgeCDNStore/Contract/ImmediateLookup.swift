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
  /// Serves the complete object of `key` in place when it is in RAM now, its body is at
  /// most `maxBodyBytes`, and `accept` agrees to it; returns whether `serve` ran.
  ///
  /// False means "ask `lookup`", never "miss": nothing is counted and no eviction state
  /// changes. True is a hit in every respect (eviction access, hit and byte counters), as
  /// `lookup` plus a whole read of the body would be, counted by the time this returns;
  /// `readsBody` false (HEAD) counts no body bytes, as a lookup whose body is never read.
  ///
  /// `accept` runs before anything is counted, so the caller can decline an object it
  /// would not serve from here (stale, an entry of its own bookkeeping, one whose
  /// rendering it keeps in the memo and finds unfit) at no cost. It sees the meta, the
  /// body's size, the stored version's memo (see `ImmediateHit.memo`) and, when the store
  /// can lend it, the memo's value (`kept`, else nil: ask `memo`), unretained: valid for
  /// the call, as is anything read through it (a pointer into it must not outlive `accept`). Then `serve` sees the body's chunks, or its `FileBody` (no chunks) when the
  /// store keeps it in a file.
  ///
  /// Both see what the store holds, borrowed for the call: nothing is copied out. Why: a
  /// hot object is read by every event loop at once, and every reference copied out of
  /// the store (the meta's arrays, the body's list, the memo) is a retain and a release
  /// on a cache line all those cores write. A caller that renders the response within
  /// the call needs none of those copies. `kept` is `Unmanaged` for the same reason: lent
  /// as an object reference, the caller's compiled code retained it around its own calls.
  func immediateServe(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?, _ kept: Unmanaged<AnyObject>?) -> Bool,
    serve: (_ body: [ByteBuffer], _ file: FileBody?) -> Void
  ) -> Bool
}

extension ImmediateLookup {
  /// `immediateServe`'s answer copied out, for a caller that keeps it past the call; nil
  /// where that returns false.
  public func immediateLookup(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?) -> Bool
  ) -> ImmediateHit? {
    var hit: ImmediateHit?
    var accepted: (meta: CacheMeta, bodySize: Int, memo: (any EntryMemo)?)?
    let served = immediateServe(
      key, maxBodyBytes: maxBodyBytes, readsBody: readsBody,
      accept: { meta, bodySize, memo, _ in
        guard accept(meta, bodySize, memo) else { return false }
        accepted = (meta, bodySize, memo)
        return true
      },
      serve: { body, file in
        guard let accepted else { return }
        hit = ImmediateHit(
          meta: accepted.meta, body: body, bodySize: accepted.bodySize, memo: accepted.memo, fileBody: file)
      })
    return served ? hit : nil
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
