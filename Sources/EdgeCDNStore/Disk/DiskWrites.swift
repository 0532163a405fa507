import NIOCore
import Synchronization

/// The disk tier's writes that a tag finds (`DiskStore.lookupStreamingWrite`): those in
/// progress, whose readers follow them (`DiskWriteProgress`), and the latest commits, so
/// that a tag still finds its own write just after it committed (the proxy's leader and
/// waiters ask then) but never a newer write of the same key.
///
/// Why bounded: the index keeps a few bytes per object and no tag; remembering every
/// commit's tag would add a word per object. A tag older than the last
/// `rememberedCommits` commits finds nothing, and its caller reads the key untagged (the
/// proxy's leader), or fetches again (a waiter that woke that late).
final class DiskWrites: Sendable {
  enum Found {
    /// In progress: what it stores, and its readers' view of it.
    case writing(DiskWriteProgress, meta: CacheMeta, metaLength: Int)
    /// Committed with its head there.
    case committed(RecordLocation)
  }

  static let rememberedCommits = 4096

  private struct Open {
    var hash: CacheHash
    var progress: DiskWriteProgress
    var meta: CacheMeta
    var metaLength: Int
  }

  private struct Committed {
    var hash: CacheHash
    var head: RecordLocation
  }

  private struct State {
    var next: UInt64 = 0
    var open: [StreamingWriteTag: Open] = [:]
    var committed: [StreamingWriteTag: Committed] = [:]
    var order = CircularBuffer<StreamingWriteTag>()
  }

  private let state = Mutex(State())

  func begin(_ hash: CacheHash, meta: CacheMeta, metaLength: Int) -> (StreamingWriteTag, DiskWriteProgress) {
    let progress = DiskWriteProgress()
    let tag = state.withLock { state in
      state.next += 1
      let tag = StreamingWriteTag(rawValue: state.next)
      state.open[tag] = Open(hash: hash, progress: progress, meta: meta, metaLength: metaLength)
      return tag
    }
    return (tag, progress)
  }

  /// The write of `tag` ended: committed with its head at `head`, or not (nil).
  func ended(_ tag: StreamingWriteTag, committedAt head: RecordLocation?) {
    state.withLock { state in
      guard let open = state.open.removeValue(forKey: tag), let head else { return }
      state.committed[tag] = Committed(hash: open.hash, head: head)
      state.order.append(tag)
      if state.order.count > Self.rememberedCommits, let oldest = state.order.popFirst() {
        state.committed[oldest] = nil
      }
    }
  }

  func find(_ tag: StreamingWriteTag, hash: CacheHash) -> Found? {
    state.withLock { state in
      if let open = state.open[tag], open.hash == hash {
        return .writing(open.progress, meta: open.meta, metaLength: open.metaLength)
      }
      if let committed = state.committed[tag], committed.hash == hash { return .committed(committed.head) }
      return nil
    }
  }

  /// Writes in progress (for tests).
  var openCount: Int { state.withLock { $0.open.count } }
}
