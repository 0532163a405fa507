import CoreMetrics
public import NIOCore
import Synchronization

/// A miss handler that counts bytes written, times `finish()`, and keeps the
/// writes-in-flight gauge right even when the caller drops it without finishing.
public final class InstrumentedMissHandler<Base: MissHandler>: MissHandler {
  let base: Base
  let metrics: StoreMetrics
  let statistics: (any StatisticsReporting)?
  private let open = Atomic<Bool>(true)

  init(base: Base, metrics: StoreMetrics, statistics: (any StatisticsReporting)?) {
    self.base = base
    self.metrics = metrics
    self.statistics = statistics
  }

  deinit {
    if close() { metrics.writesAborted.increment() }
  }

  /// Ends the in-flight count once; true for the call that ended it.
  private func close() -> Bool {
    guard open.exchange(false, ordering: .relaxed) else { return false }
    metrics.writesInFlight.decrement()
    return true
  }

  public var streamingWriteTag: StreamingWriteTag? { base.streamingWriteTag }

  public func writeBody(_ data: ByteBuffer, eof: Bool) async throws(CacheError) {
    let size = data.readableBytes
    do {
      try await base.writeBody(data, eof: eof)
      metrics.bytesWritten.increment(by: size)
    } catch {
      metrics.record(error)
      throw error
    }
  }

  public func finish() async throws(CacheError) -> MissFinish {
    let start = NIODeadline.now()
    do {
      let finished = try await base.finish()
      metrics.writeFinishDuration.recordNanoseconds(NIODeadline.now().uptimeNanoseconds - start.uptimeNanoseconds)
      if close() { metrics.writesFinished.increment() }
      if let statistics { metrics.record(statistics.statistics) }
      return finished
    } catch {
      metrics.record(error)
      if close() { metrics.writesAborted.increment() }
      throw error
    }
  }

  public func abort(reason: String) async {
    await base.abort(reason: reason)
    if close() { metrics.writesAborted.increment() }
  }
}
