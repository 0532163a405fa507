public import NIOCore
import Synchronization

/// Writes one object to the disk tier.
///
/// Body bytes gather in a buffer of at most one fragment; each full fragment is
/// appended to the log as a record at once, so RAM per write is one fragment plus the
/// chunk being written, whatever the object size. `finish()` appends the head last
/// (meta, the fragment table with block CRCs, the tail of the body): only then is the
/// object in the index, so a crash or an abort never leaves half an object visible.
///
/// Readers that hold the write's tag follow it as it goes (`DiskWriteProgress`): each
/// fragment once appended, the tail once the body has ended.
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
    /// `pending` came from the store's staging buffers (not a slice of the caller's bytes).
    var pendingIsStaging = false
    var bodyLength = 0
    /// The most body bytes held at once, for tests of the RAM bound.
    var peakBuffered = 0
    /// Readers were told where the body ends.
    var endPublished = false
  }

  private let store: DiskStore
  private let key: CacheKey
  private let meta: CacheMeta
  private let metaBytes: ByteBuffer
  private let state = Mutex(State())
  private let tag: StreamingWriteTag
  let progress: DiskWriteProgress

  init(store: DiskStore, key: CacheKey, meta: CacheMeta, metaBytes: ByteBuffer) {
    self.store = store
    self.key = key
    self.meta = meta
    self.metaBytes = metaBytes
    (tag, progress) = store.writes.begin(key.combinedHash, meta: meta, metaLength: metaBytes.readableBytes)
  }

  /// A write dropped unfinished fails for its readers. Nothing else to undo: fragments
  /// already written are unreachable without a head and go with their region.
  deinit {
    guard state.withLock({ $0.phase != .finished }) else { return }
    progress.failed(.writerFailed(key: key.combinedHash, reason: "the disk write was dropped unfinished"))
    store.writes.ended(tag, committedAt: nil)
  }

  public var streamingWriteTag: StreamingWriteTag? { tag }

  /// The most body bytes this write held in RAM at once.
  var peakBufferedBytes: Int { state.withLock { $0.peakBuffered } }

  public func writeBody(_ data: ByteBuffer, eof: Bool) async throws(CacheError) {
    let fragmentSize = store.configuration.fragmentSize
    let limit = store.configuration.maxObjectSize
    let hash = key.combinedHash
    let pieces = state.withLock { s -> Result<[(ByteBuffer, ours: Bool)], CacheError> in
      guard s.phase == .open else {
        return .failure(.invalidState(key: hash, reason: "writeBody after eof, finish or abort"))
      }
      let total = s.bodyLength + data.readableBytes
      guard total <= limit else {
        s.phase = .aborted
        let error = CacheError.objectTooLarge(key: hash, size: total, limit: limit)
        progress.failed(error)
        return .failure(error)
      }
      s.bodyLength = total
      if eof { s.phase = .eofWritten }
      return .success(Self.cut(data, into: &s, fragmentSize: fragmentSize, staging: store.staging))
    }
    for (piece, ours) in try pieces.get() { try await writeFragment(piece, reuseStorage: ours) }
    if eof { publishEnd() }
  }

  /// Tells readers where the body ends, and gives them its tail when the head will hold
  /// it (`finish()`); a longer tail reaches them as the last fragment. A tail in a staging
  /// buffer, which the next write reuses, is copied; the caller's own bytes are not.
  /// `taken`: the body's end, when the caller has taken it out of the state (`finish()`).
  private func publishEnd(taken: (tail: ByteBuffer, staging: Bool)? = nil) {
    let end = state.withLock { s -> (Int, ByteBuffer, staging: Bool)? in
      guard !s.endPublished else { return nil }
      s.endPublished = true
      let (tail, staging) = taken ?? (s.pending, s.pendingIsStaging)
      return (s.bodyLength, tail, staging)
    }
    guard let (bodyLength, tail, staging) = end else { return }
    var published = ByteBuffer()
    if tail.readableBytes <= Self.inlineTailBytes {
      if staging {
        published = ByteBufferAllocator().buffer(capacity: tail.readableBytes)
        published.writeImmutableBuffer(tail)
      } else {
        published = tail
      }
    }
    progress.reachedEnd(bodyLength: bodyLength, tail: published)
  }

  /// A tail up to this long rides in the head record; a longer one becomes a last fragment.
  static let inlineTailBytes = RecordFormat.checkBlockSize

  /// Splits the bytes written so far into whole fragments, copying as little as it can:
  /// the partial fragment held from earlier writes is filled up (one copy), whole
  /// fragments inside `data` are zero-copy slices of it, and only a partial rest is
  /// copied, into a buffer sized for a whole fragment so that filling it never grows it.
  /// `ours`: the piece is a staging buffer (not a slice of the caller's bytes), to hand
  /// back once written.
  private static func cut(
    _ data: ByteBuffer, into s: inout State, fragmentSize: Int, staging: StagingBuffers
  ) -> [(ByteBuffer, ours: Bool)] {
    var input = data
    var pieces: [(ByteBuffer, ours: Bool)] = []
    if s.pending.readableBytes > 0,
      let head = input.readSlice(
        length: min(fragmentSize - s.pending.readableBytes, input.readableBytes))
    {
      s.pending.writeImmutableBuffer(head)
      if s.pending.readableBytes == fragmentSize {
        pieces.append((s.pending, s.pendingIsStaging))
        s.pending = ByteBuffer()
        s.pendingIsStaging = false
      }
    }
    while input.readableBytes >= fragmentSize, let piece = input.readSlice(length: fragmentSize) {
      pieces.append((piece, false))
    }
    if input.readableBytes > 0 {
      if s.phase == .eofWritten && s.pending.readableBytes == 0 {
        // The end of the body: keep the caller's bytes as they are (finish() writes them).
        s.pending = input
      } else {
        if s.pending.readableBytes == 0 {
          s.pending = staging.take()
          s.pendingIsStaging = true
        }
        s.pending.writeImmutableBuffer(input)
      }
    }
    s.peakBuffered = max(s.peakBuffered, s.pending.readableBytes + pieces.reduce(0) { $0 + $1.0.readableBytes })
    return pieces
  }

  /// Pieces this large have their CRCs computed and are copied into the region on NIO's
  /// thread pool: per-byte work of many microseconds stays off the cooperative pool.
  static let offPoolThreshold = 64 << 10

  private func writeFragment(_ piece: ByteBuffer, reuseStorage: Bool = false) async throws(CacheError) {
    let hash = key.combinedHash
    let location: RecordLocation
    let crcs: [UInt32]
    do throws(CacheError) {
      if piece.readableBytes >= Self.offPoolThreshold {
        let writer = store.writer
        // The pool's closure gets the bytes, not the buffer: it may be released on the
        // pool thread after this task resumed, and a buffer still referenced there is not
        // unique when the next write takes it back from the staging pool, which then
        // allocates (and page-faults in) a fresh one: measured, a third of the reuses.
        // `piece` itself lives on below (the retry and the hand-back use it).
        let bytes = PieceBytes(raw: piece.withUnsafeReadableBytes { $0 })
        let (blockCRCs, first) = try await DurableFile.onIOThread { () -> ([UInt32], RegionWriter.AppendOutcome) in
          (Self.blockCRCs(of: bytes.raw), writer.tryAppend(kind: .fragment, hash: hash, bytes: bytes.raw))
        }
        withExtendedLifetime(piece) {}
        crcs = blockCRCs
        location = try await store.append(kind: .fragment, hash: hash, payload: piece, firstOutcome: first)
      } else {
        crcs = piece.withUnsafeReadableBytes { Self.blockCRCs(of: $0) }
        location = try await store.append(kind: .fragment, hash: hash, payload: piece)
      }
    } catch {
      state.withLock { $0.phase = .aborted }
      progress.failed(error)
      throw error
    }
    // The fragment table lives in the progress only: readers follow it, and `finish()`
    // writes it into the head.
    let fragment = FragmentRef(offset: location.offset, sequence: location.sequence, length: piece.readableBytes)
    progress.appended(fragment, blockCRCs: crcs)
    // The region holds a copy now.
    if reuseStorage { store.staging.give(piece) }
  }

  /// One CRC per check block of the piece.
  private static func blockCRCs(of raw: UnsafeRawBufferPointer) -> [UInt32] {
    var crcs: [UInt32] = []
    crcs.reserveCapacity((raw.count + RecordFormat.checkBlockSize - 1) / RecordFormat.checkBlockSize)
    var offset = 0
    while offset < raw.count {
      let size = min(RecordFormat.checkBlockSize, raw.count - offset)
      crcs.append(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + size)])))
      offset += size
    }
    return crcs
  }

  public func finish() async throws(CacheError) -> MissFinish {
    let hash = key.combinedHash
    let taken = state.withLock { s -> (ByteBuffer, staging: Bool)? in
      guard s.phase == .open || s.phase == .eofWritten else { return nil }
      s.phase = .finishing
      let tail = (s.pending, s.pendingIsStaging)
      s.pending = ByteBuffer()
      s.pendingIsStaging = false
      return tail
    }
    guard var (tail, isStaging) = taken else {
      throw .invalidState(key: hash, reason: "finish after finish or abort")
    }
    // A writer may finish without a last write marked `eof`.
    publishEnd(taken: (tail, isStaging))
    do throws(CacheError) {
      // A long tail becomes a last, shorter fragment; a short one rides in the head.
      if tail.readableBytes > Self.inlineTailBytes {
        try await writeFragment(tail, reuseStorage: isStaging)
        tail = ByteBuffer()
        isStaging = false
      }
      let bodyLength = state.withLock { $0.bodyLength }
      let layout = progress.snapshot.layout
      let fragments = layout.fragments
      let payload = HeadRecord.encodePayload(
        meta: metaBytes, bodyLength: bodyLength, fragments: fragments, blockCRCs: layout.blockCRCs, inline: tail)
      let weight = HeadRecord.weight(metaLength: metaBytes.readableBytes, bodyLength: bodyLength)
      let head = try await store.commitHead(
        key: key, payload: payload, fragments: fragments, weight: weight, meta: meta)
      state.withLock { $0.phase = .finished }
      store.writes.ended(tag, committedAt: head)
      // The head payload holds a copy of the tail.
      if isStaging { store.staging.give(tail) }
      return .created(size: weight)
    } catch {
      state.withLock { $0.phase = .aborted }
      progress.failed(error)
      store.writes.ended(tag, committedAt: nil)
      throw error
    }
  }

  /// During `finish()` the commit decides: an abort then would fail readers of a write
  /// that may still commit.
  public func abort(reason: String) async {
    let ends = state.withLock { s -> Bool in
      guard s.phase != .finished, s.phase != .finishing else { return false }
      s.phase = .aborted
      s.pending = ByteBuffer()
      s.pendingIsStaging = false
      return true
    }
    guard ends else { return }
    progress.failed(.writerFailed(key: key.combinedHash, reason: "the disk write was aborted: \(reason)"))
    store.writes.ended(tag, committedAt: nil)
  }
}

/// A piece's bytes for the I/O pool: the caller keeps the piece's buffer alive until
/// the pool's work is done.
private struct PieceBytes: @unchecked Sendable {
  let raw: UnsafeRawBufferPointer
}
