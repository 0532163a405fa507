import CoreMetrics
public import NIOCore

/// A hit handler that counts bytes read, the time to the first byte (for sampled
/// lookups) and the reads in flight. A read is in flight from the lookup until the
/// body's end, an error or `finish()`, whichever comes first.
public struct InstrumentedHitHandler<Base: HitHandler>: HitHandler {
  var base: Base
  let metrics: StoreMetrics
  /// When the lookup started, until the first byte is read; nil when not sampled.
  private var firstByteStart: NIODeadline?
  private var inFlight = true

  init(base: Base, metrics: StoreMetrics, start: NIODeadline?) {
    self.base = base
    self.metrics = metrics
    self.firstByteStart = start
  }

  public mutating func readBody() async throws(CacheError) -> ByteBuffer? {
    do {
      let chunk = try await base.readBody()
      if let start = firstByteStart {
        firstByteStart = nil
        metrics.firstByteDuration.recordNanoseconds(NIODeadline.now().uptimeNanoseconds - start.uptimeNanoseconds)
      }
      guard let chunk else {
        close()
        return nil
      }
      metrics.bytesRead.increment(by: chunk.readableBytes)
      return chunk
    } catch {
      metrics.record(error)
      close()
      throw error
    }
  }

  public mutating func finish() async throws(CacheError) {
    close()
    try await base.finish()
  }

  private mutating func close() {
    guard inFlight else { return }
    inFlight = false
    metrics.readsInFlight.decrement()
  }

  public var canSeek: Bool { base.canSeek }
  public var canSeekMultipart: Bool { base.canSeekMultipart }
  public var shouldCountAccess: Bool { base.shouldCountAccess }
  public var evictionWeight: Int { base.evictionWeight }

  public mutating func seek(start: Int, end: Int?) async throws(CacheError) {
    do { try await base.seek(start: start, end: end) } catch {
      metrics.record(error)
      throw error
    }
  }

  public mutating func seekMultipart(start: Int, end: Int?) async throws(CacheError) {
    do { try await base.seekMultipart(start: start, end: end) } catch {
      metrics.record(error)
      throw error
    }
  }
}
