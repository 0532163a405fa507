/// S3-FIFO's ghost queue: the fingerprints of keys recently evicted from the small
/// queue, oldest first, so a key asked for again soon after goes straight to main.
///
/// Only a 32-bit fingerprint is kept (4 bytes in the ring, about 6 in the table): a
/// false match merely lets one object skip the small queue, which costs nothing but
/// a little precision, and it keeps the ghost far cheaper than a tracked key.
struct GhostQueue {
  private var ring = SlotRing()
  private var table = ProbingTable()

  var count: Int { table.count }

  @inline(__always)
  static func fingerprint(_ hash: UInt64) -> UInt32 {
    // Never zero: zero marks an empty table bucket.
    UInt32(truncatingIfNeeded: hash >> 32) | 1
  }

  @inline(__always)
  private static func home(_ fingerprint: UInt32) -> UInt64 {
    (UInt64(fingerprint) &* 0x9E37_79B9_7F4A_7C15) >> 32
  }

  func contains(_ hash: UInt64) -> Bool {
    let fp = Self.fingerprint(hash)
    return table.find(home: Self.home(fp)) { $0 == fp } != nil
  }

  /// Remembers `hash`, forgetting the oldest fingerprints beyond `limit`.
  mutating func insert(_ hash: UInt64, limit: Int) {
    let fp = Self.fingerprint(hash)
    guard table.find(home: Self.home(fp), { $0 == fp }) == nil else { return }
    while ring.count >= max(1, limit), let old = ring.popFront() { forget(old) }
    ring.pushBack(fp)
    table.insert(fp, home: Self.home(fp), homeOf: Self.home)
  }

  /// Forgets `hash` after a ghost hit; its ring entry expires later on its own.
  mutating func remove(_ hash: UInt64) { forget(Self.fingerprint(hash)) }

  private mutating func forget(_ fp: UInt32) {
    if let bucket = table.find(home: Self.home(fp), { $0 == fp }) { table.remove(at: bucket, homeOf: Self.home) }
  }

  var approximateBytes: Int { ring.approximateBytes + table.approximateBytes }
}
