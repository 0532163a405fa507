public import NIOCore
import Synchronization

/// Writes one object to the disk tier.
///
/// Body bytes gather in a buffer of at most one fragment; each full fragment is
/// appended to the log as a record at once, so RAM per write is one fragment plus the
/// chunk being written, whatever the object size. `finish()` appends the head last
/// (meta, the fragment table with block CRCs, the tail of the body): only then is the
/// object in the index, so a crash or an abort never leaves half an object visible.
public final class DiskMissHandler: MissHandler {
  private enum Phase {
    case open
    case eofWritten
    case finishing
    case finished
    case aborted
  }

  private struct State {
    var phase = Phase.open
    var pending = ByteBuffer()
    var bodyLength = 0
    var fragments: [FragmentRef] = []
    var blockCRCs: [UInt32] = []
    /// The most body bytes held at once, for tests of the RAM bound.
    var peakBuffered = 0
  }

  private let store: DiskStore
  private let key: CacheKey
  private let meta: CacheMeta
  private let metaBytes: ByteBuffer
  private let state = Mutex(State())

  init(store: DiskStore, key: CacheKey, meta: CacheMeta, metaBytes: ByteBuffer) {
    self.store = store
    self.key = key
    self.meta = meta
    self.metaBytes = metaBytes
  }

  /// Nothing to undo on release: fragments already written are unreachable without a
  /// head and go with their region.
  public var streamingWriteTag: StreamingWriteTag? { nil }

  /// The most body bytes this write held in RAM at once.
  var peakBufferedBytes: Int { state.withLock { $0.peakBuffered } }

  public func writeBody(_ data: ByteBuffer, eof: Bool) async throws(CacheError) {
    let fragmentSize = store.configuration.fragmentSize
    let limit = store.configuration.maxObjectSize
    let hash = key.combinedHash
    let pieces = state.withLock { s -> Result<[ByteBuffer], CacheError> in
      guard s.phase == .open else {
        return .failure(.invalidState(key: hash, reason: "writeBody after eof, finish or abort"))
      }
      let total = s.bodyLength + data.readableBytes
      guard total <= limit else {
        s.phase = .aborted
        return .failure(.objectTooLarge(key: hash, size: total, limit: limit))
      }
      s.bodyLength = total
      if eof { s.phase = .eofWritten }
      s.pending.writeImmutableBuffer(data)
      s.peakBuffered = max(s.peakBuffered, s.pending.readableBytes)
      var pieces: [ByteBuffer] = []
      while s.pending.readableBytes >= fragmentSize, let piece = s.pending.readSlice(length: fragmentSize) {
        pieces.append(piece)
      }
      if !pieces.isEmpty {
        var rest = ByteBuffer()
        rest.reserveCapacity(fragmentSize)
        rest.writeImmutableBuffer(s.pending)
        s.pending = rest
      }
      return .success(pieces)
    }
    for piece in try pieces.get() { try await writeFragment(piece) }
  }

  private func writeFragment(_ piece: ByteBuffer) async throws(CacheError) {
    let hash = key.combinedHash
    let index = state.withLock { UInt32(truncatingIfNeeded: $0.fragments.count) }
    var crcs: [UInt32] = []
    piece.withUnsafeReadableBytes { raw in
      var offset = 0
      while offset < raw.count {
        let size = min(RecordFormat.checkBlockSize, raw.count - offset)
        crcs.append(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + size)])))
        offset += size
      }
    }
    let location: RecordLocation
    do throws(CacheError) {
      location = try await store.append(kind: .fragment, hash: hash, fragmentIndex: index, payload: piece)
    } catch {
      state.withLock { $0.phase = .aborted }
      throw error
    }
    state.withLock { s in
      s.fragments.append(
        FragmentRef(offset: location.offset, sequence: location.sequence, length: piece.readableBytes))
      s.blockCRCs.append(contentsOf: crcs)
    }
  }

  public func finish() async throws(CacheError) -> MissFinish {
    let hash = key.combinedHash
    let tail = state.withLock { s -> ByteBuffer? in
      guard s.phase == .open || s.phase == .eofWritten else { return nil }
      s.phase = .finishing
      let tail = s.pending
      s.pending = ByteBuffer()
      return tail
    }
    guard var tail else { throw .invalidState(key: hash, reason: "finish after finish or abort") }
    do throws(CacheError) {
      // A long tail becomes a last, shorter fragment; a short one rides in the head.
      if tail.readableBytes > RecordFormat.checkBlockSize {
        try await writeFragment(tail)
        tail = ByteBuffer()
      }
      let (fragments, crcs, bodyLength) = state.withLock { ($0.fragments, $0.blockCRCs, $0.bodyLength) }
      let payload = HeadRecord.encodePayload(
        meta: metaBytes, bodyLength: bodyLength, fragments: fragments, blockCRCs: crcs, inline: tail)
      let weight = metaBytes.readableBytes + bodyLength
      try await store.commitHead(key: key, payload: payload, fragments: fragments, weight: weight, meta: meta)
      state.withLock { $0.phase = .finished }
      return .created(size: weight)
    } catch {
      state.withLock { $0.phase = .aborted }
      throw error
    }
  }

  public func abort(reason: String) async {
    state.withLock { s in
      if s.phase != .finished { s.phase = .aborted }
      s.pending = ByteBuffer()
    }
  }
}
