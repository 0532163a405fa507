/// An open-addressing hash set of 32-bit values with linear probing and backward-shift
/// deletion (no tombstones), where the caller says where a value belongs.
///
/// Why not `Dictionary`: a Swift dictionary bucket holds key and value plus metadata;
/// here a bucket is 4 bytes, either a slot number whose full key lives in the entry
/// slab or a ghost fingerprint, and the load factor stays between 3/8 and 3/4.
struct ProbingTable {
  private var buckets: [UInt32]
  private var mask: Int
  private(set) var count = 0
  static let empty: UInt32 = 0

  init(minimumCapacity: Int = 16) {
    var capacity = 16
    while capacity * 3 < minimumCapacity * 4 { capacity <<= 1 }
    buckets = [UInt32](repeating: Self.empty, count: capacity)
    mask = capacity - 1
  }

  /// The bucket index holding a value `matches` accepts, probing from `home`.
  @inline(__always)
  func find(home: UInt64, _ matches: (UInt32) -> Bool) -> Int? {
    var i = Int(truncatingIfNeeded: home) & mask
    while true {
      let value = buckets[i]
      if value == Self.empty { return nil }
      if matches(value) { return i }
      i = (i + 1) & mask
    }
  }

  @inline(__always)
  func value(at bucket: Int) -> UInt32 { buckets[bucket] }

  /// Inserts a non-zero value not yet present; `homeOf` places values when growing.
  @inline(__always)
  mutating func insert(_ value: UInt32, home: UInt64, homeOf: (UInt32) -> UInt64) {
    if (count + 1) * 4 > buckets.count * 3 { resize(to: buckets.count * 2, homeOf: homeOf) }
    var i = Int(truncatingIfNeeded: home) & mask
    while buckets[i] != Self.empty { i = (i + 1) & mask }
    buckets[i] = value
    count += 1
  }

  /// Empties a bucket and shifts back the run after it so probing still finds them.
  mutating func remove(at bucket: Int, homeOf: (UInt32) -> UInt64) {
    var hole = bucket
    var i = (bucket + 1) & mask
    while buckets[i] != Self.empty {
      let home = Int(truncatingIfNeeded: homeOf(buckets[i])) & mask
      // Move the value into the hole when its home is not in (hole, i] cyclically.
      let distanceToValue = (i - home) & mask
      let distanceToHole = (i - hole) & mask
      if distanceToValue >= distanceToHole {
        buckets[hole] = buckets[i]
        hole = i
      }
      i = (i + 1) & mask
    }
    buckets[hole] = Self.empty
    count -= 1
  }

  var approximateBytes: Int { buckets.capacity * 4 }

  private mutating func resize(to capacity: Int, homeOf: (UInt32) -> UInt64) {
    let old = buckets
    buckets = [UInt32](repeating: Self.empty, count: capacity)
    mask = capacity - 1
    for value in old where value != Self.empty {
      var i = Int(truncatingIfNeeded: homeOf(value)) & mask
      while buckets[i] != Self.empty { i = (i + 1) & mask }
      buckets[i] = value
    }
  }
}
