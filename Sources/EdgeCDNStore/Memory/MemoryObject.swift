import NIOCore
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The chunks of a body with their cumulative end offsets, so a reader finds the
/// chunk holding any position by binary search and slices it without copying.
///
/// A body of one chunk (every small object once committed) keeps no offsets: one array
/// of one buffer is all it holds beside the bytes.
///
/// A large committed body may instead live in a RAM file (`MemoryFile`), with no chunks:
/// hits send it with sendfile, readers `pread` it.
struct MemoryBody: Sendable {
  private(set) var chunks: [ByteBuffer] = []
  /// ends[i] is the offset just past chunk i; empty while there is at most one chunk.
  private var ends: [Int] = []
  private(set) var size = 0
  /// The RAM file holding the whole body, when it is file-backed (then `chunks` is empty).
  private(set) var file: SharedDescriptor?
  /// The largest read of a file-backed body: a reader gets it in pieces of this size,
  /// as it would get chunks.
  static let fileReadBytes = 64 << 10
  /// A RAM file holds whole pages, of the system's size (4 KiB on x86-64, up to 64 KiB
  /// on arm64 kernels).
  static let pageBytes = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))

  init() {}

  /// A body held whole in a RAM file of exactly `size` bytes.
  init(file: SharedDescriptor, size: Int) {
    self.file = file
    self.size = size
  }

  /// The body as a `FileBody` for sendfile; nil when it is held in buffers.
  var fileBody: FileBody? { file.map { FileBody(file: $0, offset: 0, length: size) } }

  /// Up to `fileReadBytes` from `position`, capped at `limit`, read from the RAM file.
  /// Precondition: the body is file-backed and position < limit <= size.
  func read(from position: Int, limit: Int) throws(CacheError) -> ByteBuffer {
    guard let file else { return ByteBuffer() }
    return try file.read(at: position, length: min(limit - position, Self.fileReadBytes))
  }

  /// A body held in one buffer.
  init(whole: ByteBuffer) {
    guard whole.readableBytes > 0 else { return }
    chunks = [whole]
    size = whole.readableBytes
  }

  /// Lends the chunks, or the RAM file as a `FileBody` (then no chunks), to `serve`
  /// without copying the body out (a copy retains its lists).
  @inline(__always)
  func withContents(_ serve: ([ByteBuffer], FileBody?) -> Void) { serve(chunks, fileBody) }

  mutating func append(_ chunk: ByteBuffer) {
    guard chunk.readableBytes > 0 else { return }
    if chunks.count == 1 { ends = [size] }
    chunks.append(chunk)
    size += chunk.readableBytes
    if !ends.isEmpty { ends.append(size) }
  }

  /// The bytes from `position` to the end of its chunk, capped at `limit`.
  /// `hint` is the chunk index where the previous read ended, so sequential reads
  /// skip the search. Precondition: position < size.
  func slice(from position: Int, limit: Int, hint: inout Int) -> ByteBuffer {
    if ends.isEmpty {
      // One chunk (position < size, so there is one).
      hint = 0
      let chunk = chunks[0]
      let upTo = min(size, limit)
      if position == 0 && upTo == size { return chunk }
      return chunk.getSlice(at: chunk.readerIndex + position, length: upTo - position) ?? ByteBuffer()
    }
    if !(hint < ends.count && position < ends[hint] && (hint == 0 || ends[hint - 1] <= position)) {
      var low = 0
      var high = ends.count - 1
      while low < high {
        let mid = (low + high) / 2
        if ends[mid] <= position { low = mid + 1 } else { high = mid }
      }
      hint = low
    }
    let chunkStart = hint == 0 ? 0 : ends[hint - 1]
    let chunkEnd = ends[hint]
    let upTo = min(chunkEnd, limit)
    let chunk = chunks[hint]
    if position == chunkStart && upTo == chunkEnd { return chunk }
    // In bounds by construction: chunkStart <= position < upTo <= chunkEnd.
    return chunk.getSlice(at: chunk.readerIndex + position - chunkStart, length: upTo - position) ?? ByteBuffer()
  }

  /// The body as it will be kept once committed. Up to `joinLimit` bytes, one buffer of
  /// exactly its size: per-chunk overheads and NIO's power-of-two capacities would cost a
  /// small object as much as its bytes. Larger, the chunks as they are, each one that
  /// pins much more storage than its bytes copied (`retainable`).
  func compacted(joinLimit: Int, retainable: (ByteBuffer) -> ByteBuffer) -> MemoryBody {
    guard size > 0 else { return MemoryBody() }
    if size <= joinLimit {
      if chunks.count == 1, ExactBuffer.isExact(chunks[0]), chunks.capacity == 1 { return self }
      return MemoryBody(whole: ExactBuffer.joining(chunks))
    }
    var kept = MemoryBody()
    kept.chunks.reserveCapacity(chunks.count)
    kept.ends.reserveCapacity(chunks.count)
    for chunk in chunks { kept.append(retainable(chunk)) }
    return kept
  }

  /// Heap bytes the body holds: each chunk's whole storage and the two arrays. A RAM
  /// file's pages are RAM too: its size in whole pages, and its owner object.
  var heapFootprint: Int {
    if file != nil {
      return (size + Self.pageBytes - 1) / Self.pageBytes * Self.pageBytes
        + HeapFootprint.object(storedBytes: MemoryLayout<CInt>.stride)
    }
    var bytes = HeapFootprint.array(chunks) + HeapFootprint.array(ends)
    for chunk in chunks { bytes += HeapFootprint.byteBuffer(chunk) }
    return bytes
  }
}

/// One object in RAM, being written or complete, shared by its writer, the index and
/// every reader. Readers keep a reference, so a purge or a replacement never pulls the
/// bytes from under them.
final class MemoryObject: Sendable {
  enum Phase: Sendable, Equatable {
    case writing
    case complete
    case failed(CacheError)
  }

  struct State: Sendable {
    var body = MemoryBody()
    var phase = Phase.writing
    /// Readers parked until the body grows or the phase changes.
    var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
  }

  let hash: CacheHash
  let tag: StreamingWriteTag
  let state = Mutex(State())
  private let nextWaiterID = Atomic<UInt64>(0)

  init(hash: CacheHash, tag: StreamingWriteTag) {
    self.hash = hash
    self.tag = tag
  }

  /// Swaps the complete body for the same bytes held elsewhere (a RAM file), so the
  /// chunks are freed once the readers that already took them are done.
  func replaceCompleteBody(with body: MemoryBody) {
    state.withLock { state in
      if state.phase == .complete, state.body.size == body.size { state.body = body }
    }
  }

  /// Appends a chunk and wakes readers waiting for it.
  func append(_ chunk: ByteBuffer, eof: Bool) {
    let waiters = state.withLock { state in
      state.body.append(chunk)
      if eof { state.phase = .complete }
      return state.waiters.isEmpty ? [:] : Self.takeWaiters(&state)
    }
    for waiter in waiters.values { waiter.resume() }
  }

  /// Marks the body complete (finish without an eof chunk).
  func complete() {
    let waiters = state.withLock { state in
      if state.phase == .writing { state.phase = .complete }
      return Self.takeWaiters(&state)
    }
    for waiter in waiters.values { waiter.resume() }
  }

  /// Fails the write: readers that have not reached the end get `error`. The chunks are
  /// let go at once: the budget no longer counts them, and a reader that outlives the
  /// write (one waiting to go on from disk, `FollowedWrite`) must not keep them alive.
  func fail(_ error: CacheError) {
    let waiters = state.withLock { state in
      if state.phase == .writing {
        state.phase = .failed(error)
        state.body = MemoryBody()
      }
      return Self.takeWaiters(&state)
    }
    for waiter in waiters.values { waiter.resume() }
  }

  /// The body once complete; nil while writing or failed.
  var completeBody: MemoryBody? {
    state.withLock { $0.phase == .complete ? $0.body : nil }
  }

  /// Suspends until the body is larger than `knownSize` or the write ends, without
  /// polling: the writer resumes us. Cancellation resumes at once and throws.
  func waitForMore(than knownSize: Int) async throws(CacheError) {
    let id = nextWaiterID.add(1, ordering: .relaxed).newValue
    await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let resumeNow = state.withLock { state in
          if state.body.size > knownSize || state.phase != .writing || Task.isCancelled { return true }
          state.waiters[id] = continuation
          return false
        }
        if resumeNow { continuation.resume() }
      }
    } onCancel: {
      state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
    if Task.isCancelled { throw .cancelled(key: hash) }
  }

  private static func takeWaiters(_ state: inout State) -> [UInt64: CheckedContinuation<Void, Never>] {
    let waiters = state.waiters
    state.waiters = [:]
    return waiters
  }
}
