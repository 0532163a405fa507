/// One shard of S3-FIFO (Yang et al., SOSP 2023): a small FIFO that new keys enter,
/// a main FIFO for keys that proved themselves, a ghost queue to recognise keys that
/// come back and, for TinyUFO, a frequency sketch that vets them.
///
/// Entries live in a slab of parallel arrays (hash 16 bytes, weight 4, flags 1) found
/// through a 4-byte probing table, and the queues hold 4-byte slot numbers: no object
/// or allocation per key. A removed key leaves a dead slot in its queue, freed when the
/// queue reaches it (or when dead slots outnumber live ones and the queues are compacted),
/// so removal never searches a queue.
struct S3FIFOShard {
  enum Admission {
    /// S3-FIFO: keys evicted unused from small are remembered by fingerprint; a
    /// remembered key that returns goes straight to main.
    case ghost
    /// TinyUFO: as `ghost`, but a returning key enters main only if a count-min sketch
    /// of recent requests ranks it at least as high as main's next victim (TinyLFU);
    /// otherwise it starts over in small.
    case sketch
  }

  /// Frequency saturates at 3, two bits as in the paper.
  static let maxFrequency: UInt8 = 3
  private static let frequencyMask: UInt8 = 0b011
  private static let inMain: UInt8 = 0b100
  private static let live: UInt8 = 0b1000

  let admission: Admission

  private var hashes: [CacheHash] = []
  private var weights: [UInt32] = []
  private var flags: [UInt8] = []
  /// Weights of 4 GiB or more, whose `weights` entry is `UInt32.max`.
  private var largeWeights: [UInt32: Int] = [:]
  private var freeSlots: [UInt32] = []
  private var index = ProbingTable()
  private var small = SlotRing()
  private var main = SlotRing()
  private var ghost = GhostQueue()
  private var sketch: CountMinSketch?

  private(set) var smallWeight = 0
  private(set) var mainWeight = 0
  private(set) var smallCount = 0
  private(set) var mainCount = 0

  var count: Int { smallCount + mainCount }
  var weightTotal: Int { smallWeight + mainWeight }

  init(admission: Admission) {
    self.admission = admission
    if admission == .sketch { sketch = CountMinSketch(width: 256) }
  }

  // MARK: - Lookups

  @inline(__always)
  private func slot(of hash: CacheHash) -> UInt32? {
    guard let bucket = index.find(home: hash.low, { hashes[Int($0 &- 1)] == hash }) else { return nil }
    return index.value(at: bucket) &- 1
  }

  @inline(__always)
  private func weight(at slot: UInt32) -> Int {
    let stored = weights[Int(slot)]
    return stored == UInt32.max ? largeWeights[slot] ?? 0 : Int(stored)
  }

  private mutating func setWeight(_ weight: Int, at slot: UInt32) {
    if weights[Int(slot)] == UInt32.max { largeWeights[slot] = nil }
    if weight >= Int(UInt32.max) {
      weights[Int(slot)] = UInt32.max
      largeWeights[slot] = weight
    } else {
      weights[Int(slot)] = UInt32(max(0, weight))
    }
  }

  func contains(_ hash: CacheHash) -> Bool { slot(of: hash) != nil }

  func weight(of hash: CacheHash) -> Int? { slot(of: hash).map { weight(at: $0) } }

  // MARK: - Requests

  /// Records a hit: one more use (capped), and one more count in the sketch.
  mutating func access(_ hash: CacheHash) -> Bool {
    sketch?.increment(hash.low)
    guard let slot = slot(of: hash) else { return false }
    bumpFrequency(slot)
    return true
  }

  /// Tracks a key, or updates a tracked key's weight (counting a use); returns the
  /// previous weight when it was tracked. `counted` says the request was already
  /// recorded in the sketch by `access`.
  mutating func insert(_ hash: CacheHash, weight: Int, counted: Bool) -> Int? {
    if !counted { sketch?.increment(hash.low) }
    if let slot = slot(of: hash) {
      let old = self.weight(at: slot)
      setWeight(weight, at: slot)
      if flags[Int(slot)] & Self.inMain != 0 {
        mainWeight += max(0, weight) - old
      } else {
        smallWeight += max(0, weight) - old
      }
      bumpFrequency(slot)
      return old
    }
    add(hash, weight: weight, toMain: entersMainDirectly(hash), frequency: 0)
    return nil
  }

  /// Grows a tracked key's weight, capped by `maxWeight`; returns the change, or nil
  /// when the key is not tracked.
  mutating func grow(_ hash: CacheHash, by delta: Int, maxWeight: Int?) -> Int? {
    guard let slot = slot(of: hash) else { return nil }
    let current = weight(at: slot)
    let target = max(0, maxWeight.map { min(current + delta, $0) } ?? current + delta)
    setWeight(target, at: slot)
    if flags[Int(slot)] & Self.inMain != 0 { mainWeight += target - current } else { smallWeight += target - current }
    return target - current
  }

  /// Stops tracking a key; returns its weight when it was tracked.
  mutating func remove(_ hash: CacheHash) -> Int? {
    guard let bucket = index.find(home: hash.low, { hashes[Int($0 &- 1)] == hash }) else { return nil }
    let slot = index.value(at: bucket) &- 1
    index.remove(at: bucket, homeOf: { [hashes] in hashes[Int($0 &- 1)].low })
    let weight = self.weight(at: slot)
    markDead(slot, weight: weight)
    // Dead slots wait in their queue; when they outnumber live ones, sweep them.
    if small.count + main.count > 2 * count + 64 { compactQueues() }
    return weight
  }

  /// Evicts one key by S3-FIFO's rules, from the small queue when `fromSmall` (the
  /// cache-wide small queue is over its tenth), else from main. With `strict`, a shard
  /// without keys in the wanted queue evicts nothing, so that another shard's turn
  /// comes; otherwise it falls back to the other queue. Nil when nothing was evicted.
  mutating func evictOne(fromSmall: Bool, strict: Bool) -> (hash: CacheHash, weight: Int)? {
    if strict && (fromSmall ? smallCount == 0 : mainCount == 0) { return nil }
    while true {
      if smallCount > 0 && (fromSmall || mainCount == 0) {
        guard let slot = small.popFront() else { return nil }
        guard isLive(slot) else {
          freeSlots.append(slot)
          continue
        }
        let weight = self.weight(at: slot)
        let hash = hashes[Int(slot)]
        if frequency(slot) > 0 {
          // Reused while in small: it moves to main with its frequency reset.
          flags[Int(slot)] = Self.live | Self.inMain
          smallWeight -= weight
          smallCount -= 1
          mainWeight += weight
          mainCount += 1
          main.pushBack(slot)
          continue
        }
        ghost.insert(hash.low, limit: max(mainCount, 64))
        evictSlot(slot, weight: weight)
        return (hash, weight)
      }
      guard mainCount > 0, let slot = main.popFront() else { return nil }
      guard isLive(slot) else {
        freeSlots.append(slot)
        continue
      }
      let freq = frequency(slot)
      if freq > 0 {
        // Reinsertion: a used key goes round again with one use fewer (FIFO-reinsertion,
        // the paper's CLOCK-like main queue).
        flags[Int(slot)] = Self.live | Self.inMain | (freq - 1)
        main.pushBack(slot)
        continue
      }
      let weight = self.weight(at: slot)
      let hash = hashes[Int(slot)]
      evictSlot(slot, weight: weight)
      return (hash, weight)
    }
  }

  // MARK: - Persistence

  /// Tag of a saved entry: frequency (bits 0-1), in main (bit 2), sketch estimate
  /// capped at 31 (bits 3-7), so a restart keeps popularity.
  func savedEntries() -> [EvictionStateFile.Entry] {
    var out = [EvictionStateFile.Entry]()
    out.reserveCapacity(count)
    for slot in small.inOrder() + main.inOrder() where isLive(slot) {
      let hash = hashes[Int(slot)]
      let estimate = UInt8(min(31, sketch?.estimate(hash.low) ?? 0))
      let tag = (flags[Int(slot)] & (Self.frequencyMask | Self.inMain)) | estimate << 3
      out.append(EvictionStateFile.Entry(hash: hash, weight: weight(at: slot), tag: tag))
    }
    return out
  }

  /// Re-tracks a saved entry at the back of its queue; false when already tracked.
  mutating func restore(_ entry: EvictionStateFile.Entry) -> Bool {
    guard slot(of: entry.hash) == nil else { return false }
    for _ in 0..<Int(entry.tag >> 3) { sketch?.increment(entry.hash.low) }
    add(
      entry.hash, weight: entry.weight, toMain: entry.tag & Self.inMain != 0,
      frequency: min(entry.tag & Self.frequencyMask, Self.maxFrequency))
    return true
  }

  /// Bytes held by the slab, index, queues, ghost and sketch (their capacities).
  var approximateBytes: Int {
    hashes.capacity * 16 + weights.capacity * 4 + flags.capacity + freeSlots.capacity * 4 + largeWeights.capacity * 12
      + index.approximateBytes + small.approximateBytes + main.approximateBytes + ghost.approximateBytes
      + (sketch?.approximateBytes ?? 0)
  }

  // MARK: - Internals

  @inline(__always)
  private func isLive(_ slot: UInt32) -> Bool { flags[Int(slot)] & Self.live != 0 }

  @inline(__always)
  private func frequency(_ slot: UInt32) -> UInt8 { flags[Int(slot)] & Self.frequencyMask }

  @inline(__always)
  private mutating func bumpFrequency(_ slot: UInt32) {
    let freq = flags[Int(slot)] & Self.frequencyMask
    if freq < Self.maxFrequency { flags[Int(slot)] += 1 }
  }

  /// Whether a new key skips small: a ghost hit for S3-FIFO; for TinyUFO, a ghost hit
  /// that the sketch ranks at least as high as main's next victim.
  private mutating func entersMainDirectly(_ hash: CacheHash) -> Bool {
    switch admission {
    case .ghost:
      guard ghost.contains(hash.low) else { return false }
      ghost.remove(hash.low)
      return true
    case .sketch:
      guard ghost.contains(hash.low) else { return false }
      ghost.remove(hash.low)
      return mainVictimEstimate().map { (sketch?.estimate(hash.low) ?? 0) >= $0 } ?? true
    }
  }

  /// The sketch's estimate for main's next victim: its first key without reuse (reused
  /// ones go round again), looked for a few keys deep, else the least requested of
  /// those seen; nil without a sketch or with main empty.
  private func mainVictimEstimate() -> Int? {
    guard let sketch else { return nil }
    var victimEstimate: Int? = nil
    for offset in 0..<min(main.count, 8) {
      let slot = main[offset]
      guard isLive(slot) else { continue }
      let estimate = sketch.estimate(hashes[Int(slot)].low)
      if frequency(slot) == 0 { return estimate }
      victimEstimate = min(victimEstimate ?? Int.max, estimate)
    }
    return victimEstimate
  }

  private mutating func add(_ hash: CacheHash, weight: Int, toMain: Bool, frequency: UInt8) {
    let slot: UInt32
    if let reused = freeSlots.popLast() {
      slot = reused
      hashes[Int(slot)] = hash
      weights[Int(slot)] = 0
    } else {
      slot = UInt32(hashes.count)
      hashes.append(hash)
      weights.append(0)
      flags.append(0)
    }
    setWeight(weight, at: slot)
    let stored = max(0, weight)
    flags[Int(slot)] = Self.live | (toMain ? Self.inMain : 0) | frequency
    index.insert(slot &+ 1, home: hash.low, homeOf: { [hashes] in hashes[Int($0 &- 1)].low })
    if toMain {
      main.pushBack(slot)
      mainWeight += stored
      mainCount += 1
    } else {
      small.pushBack(slot)
      smallWeight += stored
      smallCount += 1
    }
    if var grown = sketch, count > grown.width {
      grown.grow(toAtLeast: count * 2)
      sketch = grown
    }
  }

  /// Takes a live, already dequeued slot out of the index and frees it.
  private mutating func evictSlot(_ slot: UInt32, weight: Int) {
    let hash = hashes[Int(slot)]
    if let bucket = index.find(home: hash.low, { $0 == slot &+ 1 }) {
      index.remove(at: bucket, homeOf: { [hashes] in hashes[Int($0 &- 1)].low })
    }
    markDead(slot, weight: weight)
    freeSlots.append(slot)
  }

  private mutating func markDead(_ slot: UInt32, weight: Int) {
    if flags[Int(slot)] & Self.inMain != 0 {
      mainWeight -= weight
      mainCount -= 1
    } else {
      smallWeight -= weight
      smallCount -= 1
    }
    flags[Int(slot)] = 0
    if weights[Int(slot)] == UInt32.max { largeWeights[slot] = nil }
    weights[Int(slot)] = 0
  }

  private mutating func compactQueues() {
    let flags = self.flags
    var freed: [UInt32] = []
    let keep: (UInt32) -> Bool = { slot in
      if flags[Int(slot)] & S3FIFOShard.live != 0 { return true }
      freed.append(slot)
      return false
    }
    small.retain(where: keep)
    main.retain(where: keep)
    freeSlots += freed
  }
}
