import CoreMetrics
public import NIOCore

extension InstrumentedStorage: ImmediateLookup where Base: ImmediateLookup {
  /// Counts an answered lookup as a hit whose body was read whole (the bytes, and a
  /// read that opened and closed); a declined one counts nothing, as the `lookup` that
  /// follows it will. Latency is sampled as for `lookup` (one in the sample interval),
  /// up to the body being handed to `serve` (also its first byte), so the caller's
  /// rendering in it is not counted as the store's.
  public func immediateServe(
    _ key: CacheKey, maxBodyBytes: Int, readsBody: Bool,
    accept: (_ meta: CacheMeta, _ bodySize: Int, _ memo: (any EntryMemo)?, _ kept: Unmanaged<AnyObject>?) -> Bool,
    serve: (_ body: [ByteBuffer], _ file: FileBody?) -> Void
  ) -> Bool {
    // First, before any object is loaded (see `ThreadStripe`).
    let stripe = ThreadStripe.current
    let start = probe.sampler.shouldSample(stripe: stripe) ? NIODeadline.now() : nil
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
    metrics.countImmediateHit(readBytes: readsBody ? bodySize : 0, stripe: stripe)
    if let elapsed {
      metrics.lookupDuration.recordNanoseconds(elapsed)
      if readsBody { metrics.firstByteDuration.recordNanoseconds(elapsed) }
    }
    return true
  }
}
