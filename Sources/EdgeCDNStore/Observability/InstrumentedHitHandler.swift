public import NIOCore

/// A hit handler that counts bytes read, the time to the first byte (for sampled
/// lookups) and the reads in flight. A read is in flight from the lookup until the
/// body's end, an error or `finish()`, whichever comes first.
public struct InstrumentedHitHandler<Base: HitHandler>: HitHandler {
  @usableFromInline var base: Base
  @usableFromInline let probe: OperationProbe
  /// When the lookup started, until the first byte is read; nil when not sampled.
  @usableFromInline var firstByteStart: NIODeadline?
  @usableFromInline var inFlight = true

  @inlinable
  public var streamingWriteTag: StreamingWriteTag? { base.streamingWriteTag }

  @inlinable
  init(base: Base, probe: OperationProbe, start: NIODeadline?) {
    self.base = base
    self.probe = probe
    self.firstByteStart = start
  }

  @inlinable
  public mutating func readBody() async throws(CacheError) -> ByteBuffer? {
    do {
      let chunk = try await base.readBody()
      if let start = firstByteStart {
        firstByteStart = nil
        probe.firstByte(since: start)
      }
      guard let chunk else {
        close()
        return nil
      }
      probe.read(chunk.readableBytes)
      return chunk
    } catch {
      close()
      throw probe.readFailed(error)
    }
  }

  @inlinable
  public mutating func finish() async throws(CacheError) {
    close()
    try await base.finish()
  }

  @inlinable
  mutating func close() {
    guard inFlight else { return }
    inFlight = false
    probe.readClosed()
  }

  /// Counted as the reads it replaces: the bytes, the first byte, the read closed.
  @inlinable
  public mutating func takeFileBody() -> FileBody? {
    guard let file = base.takeFileBody() else { return nil }
    if let start = firstByteStart {
      firstByteStart = nil
      probe.firstByte(since: start)
    }
    probe.read(file.length)
    close()
    return file
  }

  public var canSeek: Bool { base.canSeek }
  public var canSeekMultipart: Bool { base.canSeekMultipart }
  public var shouldCountAccess: Bool { base.shouldCountAccess }
  public var evictionWeight: Int { base.evictionWeight }

  @inlinable
  public mutating func seek(start: Int, end: Int?) async throws(CacheError) {
    do { try await base.seek(start: start, end: end) } catch { throw probe.readFailed(error) }
  }

  @inlinable
  public mutating func seekMultipart(start: Int, end: Int?) async throws(CacheError) {
    do { try await base.seekMultipart(start: start, end: end) } catch { throw probe.readFailed(error) }
  }
}
