import Synchronization

/// Tells a copy into an upper tier (a promotion from disk, a fill from the shared
/// tier) whether a client write of the same key overlapped it, so that the copy,
/// which read an older version, does not replace the newer one in RAM.
///
/// Why stripes of counters and not a map of keys: the check costs one atomic load at
/// the start of a copy and one at its end, with no lock and no allocation; keys that
/// share a stripe only make a copy give up needlessly (it is then removed, and the
/// next lookup reads the lower tier again), never keep a stale one.
///
/// Each stripe holds a generation (high 32 bits, bumped by every start and end of a
/// client write; it may wrap) and the writes under way (low 32 bits). A copy is safe
/// when its stripe is unchanged from its start to the end of its own commit and no
/// write was under way: every client write then either ended before the
/// copy read its source (so the copy read that write or a newer one) or began after
/// the copy committed (so the write's commit replaces the copy).
final class WriteStamps: Sendable {
  private final class Stripe: Sendable {
    let value = Atomic<UInt64>(0)
  }

  /// Generation + 1, under way + 1.
  private static let started: UInt64 = (1 << 32) + 1
  /// Generation + 1, under way - 1: adding 2^32 - 1 takes one from the low half and,
  /// by its carry, adds one to the high half.
  private static let ended: UInt64 = (1 << 32) &- 1
  private let stripes: [Stripe]

  /// 1024 stripes: with N client writes under way, about N/1024 of the copies give up
  /// needlessly (a long origin fetch keeps its stripe busy while it lasts).
  init(stripeCount: Int = 1024) {
    stripes = (0..<max(1, stripeCount)).map { _ in Stripe() }
  }

  private func stripe(_ key: CacheHash) -> Stripe {
    stripes[Int(truncatingIfNeeded: key.low % UInt64(stripes.count))]
  }

  /// Read before a copy reads its source.
  func stamp(_ key: CacheHash) -> UInt64 { stripe(key).value.load(ordering: .acquiring) }

  /// Whether a copy that began at `stamp` and has committed may stay.
  func copyMayStay(_ key: CacheHash, since stamp: UInt64) -> Bool {
    let now = stripe(key).value.load(ordering: .acquiring)
    return now == stamp && now & 0xFFFF_FFFF == 0
  }

  /// A client write of `key` begins (before any of its tiers can commit).
  func writeStarted(_ key: CacheHash) { stripe(key).value.wrappingAdd(Self.started, ordering: .acquiringAndReleasing) }

  /// A client write of `key` ended: committed, aborted or dropped.
  func writeEnded(_ key: CacheHash) { stripe(key).value.wrappingAdd(Self.ended, ordering: .acquiringAndReleasing) }
}
