import CoreMetrics
import NIOCore

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
    metrics.lookupsHit.increment()
    if readsBody, hit.bodySize > 0 { metrics.bytesRead.increment(by: hit.bodySize) }
    if let start {
      let nanoseconds = OperationProbe.nanoseconds(since: start)
      metrics.lookupDuration.recordNanoseconds(nanoseconds)
      if readsBody { metrics.firstByteDuration.recordNanoseconds(nanoseconds) }
    }
    return hit
  }
}
