import NIOCore
import Synchronization

/// When a disk hit is copied into RAM while it is read.
///
/// Why not always: a scan of cold objects would push the hot set out of RAM. The
/// default copies an object on its second hit within a minute, as a small admission
/// filter would, for the price of a small counting map.
public enum PromotionRule: Sendable, Hashable {
  case always
  case never
  /// Promote on the `count`-th disk hit of a key within `window` of its first.
  case onHit(count: Int, within: Duration)

  /// The hits and window of the default rule, also what `onHit` takes when it is
  /// configured without them.
  public static let defaultHitCount = 2
  public static let defaultWindow = Duration.seconds(60)
  /// The default: the second disk hit within a minute promotes.
  public static let `default` = PromotionRule.onHit(count: defaultHitCount, within: defaultWindow)
}

/// Counts recent disk hits per key for `PromotionRule.onHit`, in shards of bounded size.
///
/// Bounded: a shard that reaches its share of `capacity` forgets its counts (the
/// cheapest fair rule: any key's count is lost at most once per shard turnover), so
/// the map never grows with the key space.
final class PromotionCounter: Sendable {
  private struct Entry {
    var count: Int
    var first: NIODeadline
  }

  private final class Shard: Sendable {
    let map = Mutex<[CacheHash: Entry]>([:])
  }

  private let shards: [Shard]
  private let perShard: Int
  let rule: PromotionRule

  init(rule: PromotionRule, capacity: Int, shardCount: Int = 16) {
    self.rule = rule
    let count = max(1, shardCount)
    self.shards = (0..<count).map { _ in Shard() }
    self.perShard = max(1, capacity / count)
  }

  /// Records a disk hit of `key`; true when this hit should promote it.
  func recordHit(_ key: CacheHash) -> Bool {
    switch rule {
    case .always: return true
    case .never: return false
    case .onHit(let needed, let window):
      if needed <= 1 { return true }
      let now = NIODeadline.now()
      let (seconds, attoseconds) = window.components
      let windowNanos = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
      let shard = shards[Int(truncatingIfNeeded: key.hashValue & Int.max) % shards.count]
      return shard.map.withLock { map in
        if var entry = map[key], (now - entry.first).nanoseconds <= windowNanos {
          entry.count += 1
          if entry.count >= needed {
            map.removeValue(forKey: key)
            return true
          }
          map[key] = entry
          return false
        }
        if map.count >= perShard { map.removeAll(keepingCapacity: true) }
        map[key] = Entry(count: 1, first: now)
        return false
      }
    }
  }
}
