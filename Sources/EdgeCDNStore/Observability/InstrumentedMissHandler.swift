public import NIOCore
public import Synchronization

/// A miss handler that counts bytes written, times `finish()`, and keeps the
/// writes-in-flight gauge right even when the caller drops it without finishing.
public final class InstrumentedMissHandler<Base: MissHandler>: MissHandler {
  @usableFromInline let base: Base
  @usableFromInline let probe: OperationProbe
  @usableFromInline let open = Atomic<Bool>(true)

  @inlinable
  init(base: Base, probe: OperationProbe) {
    self.base = base
    self.probe = probe
  }

  deinit {
    if close() { probe.writeAborted() }
  }

  /// Ends the in-flight count once; true for the call that ended it.
  @inlinable
  func close() -> Bool {
    guard open.exchange(false, ordering: .relaxed) else { return false }
    probe.writeClosed()
    return true
  }

  public var streamingWriteTag: StreamingWriteTag? { base.streamingWriteTag }

  @inlinable
  public func writeBody(_ data: ByteBuffer, eof: Bool) async throws(CacheError) {
    let size = data.readableBytes
    do {
      try await base.writeBody(data, eof: eof)
      probe.written(size)
    } catch {
      throw probe.failed(nil, error)
    }
  }

  @inlinable
  public func finish() async throws(CacheError) -> MissFinish {
    let start = NIODeadline.now()
    do {
      let finished = try await base.finish()
      if close() { probe.writeFinished(since: start) }
      return finished
    } catch {
      if close() { probe.writeAborted() }
      throw probe.failed(nil, error)
    }
  }

  @inlinable
  public func abort(reason: String) async {
    await base.abort(reason: reason)
    if close() { probe.writeAborted() }
  }
}
