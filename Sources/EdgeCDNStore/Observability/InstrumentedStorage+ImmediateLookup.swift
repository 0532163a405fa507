import CoreMetrics
public import NIOCore

extension InstrumentedStorage: ImmediateLookup where Base: ImmediateLookup {
  /// Counts an answered lookup as a hit whose body was read whole (the bytes, and a
  /// read that opened and closed); a declined one counts nothing, as the `lookup` that
  /// follows it will. Latency is sampled as for `lookup` (one in the sample interval):
  /// the body is in hand when the lookup returns, so that instant is also its first byte.
  public func immediateLookup(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?) -> Bool
  ) -> ImmediateHit? {
    let start = probe.sampler.shouldSample() ? NIODeadline.now() : nil
    guard let hit = base.immediateLookup(key, maxBodyBytes: maxBodyBytes, readsBody: readsBody, accept: accept)
    else { return nil }
    counted(bodySize: hit.bodySize, readsBody: readsBody, start: start)
    return hit
  }

  /// Counts as `immediateLookup` does; the body size is the one `accept` saw. The time
  /// sampled ends when the body is handed to `serve`, so the caller's rendering in it is
  /// not counted as the store's.
  public func immediateServe(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?, _ kept: AnyObject?) -> Bool,
    serve: (_ body: [ByteBuffer], _ file: FileBody?) -> Void
  ) -> Bool {
    let start = probe.sampler.shouldSample() ? NIODeadline.now() : nil
    var bodySize = 0
    var elapsed: Int64?
    let served = base.immediateServe(
      key, maxBodyBytes: maxBodyBytes, readsBody: readsBody,
      accept: { meta, size, memo, kept in
        bodySize = size
        return accept(meta, size, memo, kept)
      },
      serve: { body, file in
        if let start { elapsed = OperationProbe.nanoseconds(since: start) }
        serve(body, file)
      })
    guard served else { return false }
    counted(bodySize: bodySize, readsBody: readsBody, start: start, elapsed: elapsed)
    return true
  }

  @inline(__always)
  private func counted(bodySize: Int, readsBody: Bool, start: NIODeadline?, elapsed: Int64? = nil) {
    metrics.lookupsHit.increment()
    if readsBody, bodySize > 0 { metrics.bytesRead.increment(by: bodySize) }
    if let start {
      let nanoseconds = elapsed ?? OperationProbe.nanoseconds(since: start)
      metrics.lookupDuration.recordNanoseconds(nanoseconds)
      if readsBody { metrics.firstByteDuration.recordNanoseconds(nanoseconds) }
    }
  }
}
