/// A count-min sketch of 8-bit counters that forgets: every `window` increments all
/// counters are halved, so the estimate tracks recent popularity (TinyLFU's "reset").
///
/// Why a sketch: TinyLFU must know how often keys were asked for, including keys it
/// does not hold, and a counter per key ever seen would cost more than the cache index.
/// Four rows of one byte per expected key give a few bytes per tracked key; collisions
/// only ever over-estimate, and the minimum over the rows keeps that error small.
struct CountMinSketch {
  static let rows = 4
  private static let seeds: [UInt64] = [
    0x9E37_79B9_7F4A_7C15, 0xC2B2_AE3D_27D4_EB4F, 0x1656_67B1_9E37_79F9, 0xD6E8_FEB8_6659_FD93,
  ]

  private var counters: [UInt8]
  private var widthBits: Int
  private var increments = 0
  /// Increments between two agings: ten times the width, itself at least twice the
  /// tracked keys. (Measured: a window of ten times the tracked keys only, TinyLFU's
  /// sample size, forgot too fast and missed more on Zipf workloads.)
  private var window: Int

  /// - Parameter width: counters per row, rounded up to a power of two.
  init(width: Int) {
    var bits = 4
    while (1 << bits) < width { bits += 1 }
    widthBits = bits
    counters = [UInt8](repeating: 0, count: Self.rows << bits)
    window = 10 << bits
  }

  var width: Int { 1 << widthBits }

  @inline(__always)
  private func position(_ hash: UInt64, row: Int) -> Int {
    let mixed = (hash ^ (hash >> 29)) &* Self.seeds[row]
    return (row << widthBits) | Int(truncatingIfNeeded: mixed >> UInt64(64 - widthBits))
  }

  /// The estimated recent count of `hash`.
  func estimate(_ hash: UInt64) -> Int {
    var least = UInt8.max
    for row in 0..<Self.rows { least = min(least, counters[position(hash, row: row)]) }
    return Int(least)
  }

  /// Counts one more request for `hash` (saturating) and ages when the window is over.
  mutating func increment(_ hash: UInt64) {
    // Conservative update: raise only the rows at the minimum, which keeps
    // over-estimates from collisions smaller at the same cost.
    let least = estimate(hash)
    if least < Int(UInt8.max) {
      for row in 0..<Self.rows {
        let p = position(hash, row: row)
        if Int(counters[p]) == least { counters[p] &+= 1 }
      }
    }
    increments += 1
    if increments >= window { age() }
  }

  /// Halves every counter: old popularity fades so the sketch follows the workload.
  mutating func age() {
    for i in counters.indices { counters[i] >>= 1 }
    increments /= 2
  }

  /// Widens the sketch when the tracked population outgrows it. Counts cannot be
  /// carried over (a key's counters move to other columns), so it starts empty; this
  /// happens a logarithmic number of times while the cache fills.
  mutating func grow(toAtLeast target: Int) {
    guard target > width else { return }
    self = CountMinSketch(width: target)
  }

  var approximateBytes: Int { counters.capacity }
}
