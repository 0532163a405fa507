import Synchronization

extension MemoryStore: ImmediateLookup {
  /// A committed, complete object only: while a write of the key is in progress,
  /// `lookup` prefers that write (a refresh is seen at once), so this declines and
  /// lets `lookup` decide.
  public func immediateLookup(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?) -> Bool
  ) -> ImmediateHit? {
    let hash = key.combinedHash
    let found = shard(for: hash).state.withLock { state -> Entry? in
      if state.writing[hash] != nil { return nil }
      return state.committed[hash]
    }
    guard let entry = found, let body = entry.completeBody, body.size <= maxBodyBytes,
      accept(entry.meta, body.size, entry)
    else {
      return nil
    }
    evictionManager.access(key.compact, size: entry.weight, freshUntil: entry.meta.freshUntil)
    return ImmediateHit(
      meta: entry.meta, body: body.chunks, bodySize: body.size, memo: entry, fileBody: body.fileBody)
  }
}
