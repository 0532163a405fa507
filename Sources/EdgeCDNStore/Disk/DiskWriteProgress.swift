import NIOCore
import Synchronization

/// What readers of a disk write in progress can read of it: each fragment once it is
/// appended, then the tail once the body's end is known, and whether the write failed.
///
/// Why: a write larger than RAM's maximum object size goes on on disk alone (the tiered
/// store's `DiskHandoff`), and its readers (the request filling it, coalesced waiters)
/// waited for the whole body to reach disk before their next byte: for a large file from
/// a slow origin, the whole transfer. An appended fragment is a whole record with its
/// block CRCs, so a reader reads it exactly as a hit reads a committed object's; the part
/// of the body not yet cut into a fragment stays private to the writer until the end,
/// so readers follow a write a fragment (`DiskStoreConfiguration.fragmentSize`) at a time.
final class DiskWriteProgress: Sendable {
  struct Snapshot: Sendable {
    var layout = DiskBodyLayout()
    /// Known once the writer has the body's end: its length, and the bytes from
    /// `tail.start` on, which were not in a fragment then.
    var bodyLength: Int?
    var tail: DiskBodyLayout.Tail?
    var failure: CacheError?
    /// Counts changes, so a reader waits for the next one.
    var version = 0
  }

  private struct State {
    var snapshot = Snapshot()
    var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    var nextWaiter: UInt64 = 0
  }

  private let state = Mutex(State())

  var snapshot: Snapshot { state.withLock { $0.snapshot } }

  /// Readers waiting for the write's next change (for tests).
  var waitingReaders: Int { state.withLock { $0.waiters.count } }

  func appended(_ fragment: FragmentRef, blockCRCs: [UInt32]) {
    change { $0.layout.append(fragment, blockCRCs: blockCRCs) }
  }

  /// The body ended at `bodyLength`; `tail` is what no fragment holds yet.
  func reachedEnd(bodyLength: Int, tail: ByteBuffer) {
    change { snapshot in
      snapshot.bodyLength = bodyLength
      snapshot.tail = DiskBodyLayout.Tail(start: bodyLength - tail.readableBytes, bytes: tail)
    }
  }

  /// The first failure counts; readers waiting get it.
  func failed(_ error: CacheError) {
    change { snapshot in
      if snapshot.failure == nil { snapshot.failure = error }
    }
  }

  private func change(_ body: (inout Snapshot) -> Void) {
    let waiters = state.withLock { state in
      body(&state.snapshot)
      state.snapshot.version += 1
      defer { state.waiters = [:] }
      return state.waiters
    }
    for waiter in waiters.values { waiter.resume() }
  }

  /// Returns once the write changed after `version`, or at once if it already has; a
  /// cancelled reader returns at once too (it then finds nothing new and asks again, or
  /// its caller ends it).
  func changed(after version: Int) async {
    let id = state.withLock { state in
      defer { state.nextWaiter += 1 }
      return state.nextWaiter
    }
    await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let now = state.withLock { state -> Bool in
          if state.snapshot.version != version || Task.isCancelled { return true }
          state.waiters[id] = continuation
          return false
        }
        if now { continuation.resume() }
      }
    } onCancel: {
      state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
  }
}

/// Where an object's body lies on disk: its fragments (records in the log, each with a
/// CRC per check block) and a tail held in RAM (a committed object's is in its head).
struct DiskBodyLayout: Sendable {
  struct Tail: Sendable {
    /// The body offset of the tail's first byte.
    var start: Int
    var bytes: ByteBuffer
  }

  private(set) var fragments: [FragmentRef] = []
  /// Body offset where each fragment starts, and the index of its first block CRC.
  private(set) var starts: [Int] = []
  private(set) var blockBases: [Int] = []
  private(set) var blockCRCs: [UInt32] = []
  /// Body bytes the fragments cover, from 0.
  private(set) var fragmented = 0

  init() {}

  init(fragments: [FragmentRef], blockCRCs: [UInt32]) {
    starts.reserveCapacity(fragments.count)
    blockBases.reserveCapacity(fragments.count)
    self.fragments.reserveCapacity(fragments.count)
    var base = 0
    for fragment in fragments {
      self.fragments.append(fragment)
      starts.append(fragmented)
      blockBases.append(base)
      fragmented += fragment.length
      base += Self.blocks(in: fragment.length)
    }
    self.blockCRCs = blockCRCs
  }

  mutating func append(_ fragment: FragmentRef, blockCRCs crcs: [UInt32]) {
    starts.append(fragmented)
    blockBases.append(blockCRCs.count)
    fragments.append(fragment)
    fragmented += fragment.length
    blockCRCs.append(contentsOf: crcs)
  }

  static func blocks(in length: Int) -> Int {
    (length + RecordFormat.checkBlockSize - 1) / RecordFormat.checkBlockSize
  }

  /// The fragment holding body offset `position` (below `fragmented`).
  func fragmentIndex(at position: Int) -> Int {
    var low = 0
    var high = starts.count - 1
    while low < high {
      let mid = (low + high + 1) / 2
      if starts[mid] <= position { low = mid } else { high = mid - 1 }
    }
    return low
  }
}
