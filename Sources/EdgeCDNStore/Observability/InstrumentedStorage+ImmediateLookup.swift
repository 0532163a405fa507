import CoreMetrics

extension InstrumentedStorage: ImmediateLookup where Base: ImmediateLookup {
  /// Counts an answered lookup as a hit whose body was read whole (the bytes, and a
  /// read that opened and closed); a declined one counts nothing, as the `lookup` that
  /// follows it will. Latency is not sampled: this path takes no clock reading.
  public func immediateLookup(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool, accept: (CacheMeta) -> Bool
  ) -> ImmediateHit? {
    guard let hit = base.immediateLookup(key, maxBodyBytes: maxBodyBytes, readsBody: readsBody, accept: accept)
    else { return nil }
    metrics.lookupsHit.increment()
    if readsBody, hit.bodySize > 0 { metrics.bytesRead.increment(by: hit.bodySize) }
    return hit
  }
}
