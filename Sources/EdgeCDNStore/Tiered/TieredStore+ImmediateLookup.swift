public import NIOCore

extension TieredStore: ImmediateLookup where Memory: ImmediateLookup {
  /// The RAM tier only: anything below it needs I/O, which `lookup` does.
  public func immediateServe(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?, _ kept: Unmanaged<AnyObject>?) -> Bool,
    serve: (_ body: [ByteBuffer], _ file: FileBody?) -> Void
  ) -> Bool {
    memory.immediateServe(key, maxBodyBytes: maxBodyBytes, readsBody: readsBody, accept: accept, serve: serve)
  }
}
