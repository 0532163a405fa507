public import NIOCore
import Synchronization

extension MemoryStore: ImmediateLookup {
  /// A committed, complete object only: while a write of the key is in progress,
  /// `lookup` prefers that write (a refresh is seen at once), so this declines and lets
  /// `lookup` decide. The entry's meta, memo value and body chunks are lent where the
  /// entry holds them: the entry is the one reference taken (it is retained while in use,
  /// as it may leave the index meanwhile).
  public func immediateServe(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?, _ kept: Unmanaged<AnyObject>?) -> Bool,
    serve: (_ body: [ByteBuffer], _ file: FileBody?) -> Void
  ) -> Bool {
    let hash = key.combinedHash
    let found = shard(for: hash).pointee.withLock { state -> Entry? in
      if state.writing[hash] != nil { return nil }
      return state.committed[hash]
    }
    guard let entry = found, let size = entry.completeBody?.size, size <= maxBodyBytes,
      entry.withMemoValue({ accept(entry.meta, size, entry, $0) })
    else {
      return false
    }
    evictionManager.access(key.compact, size: entry.weight, freshUntil: entry.meta.freshUntil)
    entry.serveBody(serve)
    return true
  }
}
