import Synchronization

/// Key hash → location of the object's head record, in 8 bytes per slot.
///
/// Each shard is an open-addressing table (linear probing) of `UInt64` words:
///
///     bit 63 valid | bit 62 accessed since written | bits 36...61 tag (26 hash bits) | bits 0...35 location
///
/// The location counts 16-byte units from the start of the file (1 TiB addressable).
/// The shard is chosen by 8 other hash bits, so 34 bits of the 128-bit hash tell
/// entries apart in RAM; the full hash is in the record and checked on every read, so
/// a tag collision costs a wasted read or an early eviction, never wrong bytes.
/// Tables grow by 1.5x at 90% load, so they use 8 / 0.6...0.9 = 9 to 13.4 bytes per
/// object (Apache Traffic Server's directory entry is 10 bytes).
///
/// The home slot is computed from the tag alone, so a table can be rebuilt without
/// the full hashes. Deletions leave tombstones; a rebuild drops them.
final class DiskIndex: Sendable {
  static let shardBits = 8
  static let tagBits: UInt64 = 26
  static let locationBits: UInt64 = 36
  static let validBit: UInt64 = 1 << 63
  static let accessedBit: UInt64 = 1 << 62
  static let locationMask: UInt64 = (1 << locationBits) - 1
  static let tagMask: UInt64 = (1 << tagBits) - 1
  static let tombstone: UInt64 = 1

  struct Table: Sendable {
    var words: ContiguousArray<UInt64> = ContiguousArray(repeating: 0, count: 16)
    var count = 0
    var tombstones = 0
  }

  final class Shard: Sendable {
    let table = Mutex(Table())
  }

  private let shards: [Shard]
  private let liveCount = Atomic<Int>(0)

  init() {
    shards = (0..<(1 << Self.shardBits)).map { _ in Shard() }
  }

  /// Live entries.
  var count: Int { liveCount.load(ordering: .relaxed) }

  /// Bytes the tables hold (slots allocated), the index's own accounting.
  var memoryBytes: Int {
    shards.reduce(0) { total, shard in total + shard.table.withLock { $0.words.capacity * 8 } }
  }

  @inline(__always)
  static func tag(of hash: CacheHash) -> UInt64 { (hash.high >> UInt64(shardBits)) & tagMask }

  @inline(__always)
  private func shard(for hash: CacheHash) -> Shard {
    shards[Int(truncatingIfNeeded: hash.high & UInt64((1 << Self.shardBits) - 1))]
  }

  @inline(__always)
  static func unit(ofOffset offset: Int) -> UInt64 { UInt64(offset / RecordFormat.alignment) }

  @inline(__always)
  static func offset(ofWord word: UInt64) -> Int { Int(word & locationMask) * RecordFormat.alignment }

  @inline(__always)
  private static func home(tag: UInt64, capacity: Int) -> Int { Int((tag &* UInt64(capacity)) >> tagBits) }

  /// File offsets of head records whose tag matches `hash`, in probe order (usually 0 or 1).
  func candidates(_ hash: CacheHash) -> [Int] {
    let tag = Self.tag(of: hash)
    return shard(for: hash).table.withLock { table in
      var found: [Int] = []
      Self.probe(table, tag: tag) { index in found.append(Self.offset(ofWord: table.words[index])) }
      return found
    }
  }

  /// Points `hash` at `offset` (recovery), replacing an entry of the same tag; returns the offset replaced.
  @discardableResult
  func insert(_ hash: CacheHash, offset: Int) -> Int? {
    let tag = Self.tag(of: hash)
    let (replaced, added) = shard(for: hash).table.withLock { Self.put(&$0, tag: tag, offset: offset) }
    if added { liveCount.add(1, ordering: .relaxed) }
    return replaced
  }

  /// Removes the entry of `hash`, when `offset` is nil or it still points there.
  /// Returns the offset removed.
  @discardableResult
  func remove(_ hash: CacheHash, ifAt offset: Int? = nil) -> Int? {
    let tag = Self.tag(of: hash)
    let removed = shard(for: hash).table.withLock { table -> Int? in
      var slot: Int?
      Self.probe(table, tag: tag) { index in
        if slot == nil, offset == nil || Self.offset(ofWord: table.words[index]) == offset { slot = index }
      }
      guard let slot else { return nil }
      let old = Self.offset(ofWord: table.words[slot])
      table.words[slot] = Self.tombstone
      table.count -= 1
      table.tombstones += 1
      return old
    }
    if removed != nil { liveCount.subtract(1, ordering: .relaxed) }
    return removed
  }

  /// Appends a record and points `hash` at it, with the shard locked throughout, so
  /// that for every key the order of records in the log is the order of index
  /// changes: recovery, which replays the log, then ends where RAM was.
  func insert(
    _ hash: CacheHash, appending append: () -> RegionWriter.AppendOutcome
  ) -> (RegionWriter.AppendOutcome, replaced: Int?) {
    let tag = Self.tag(of: hash)
    let result = shard(for: hash).table.withLock { table -> (RegionWriter.AppendOutcome, replaced: Int?, added: Bool) in
      let outcome = append()
      guard case .appended(let location) = outcome else { return (outcome, nil, false) }
      let (replaced, added) = Self.put(&table, tag: tag, offset: location.offset)
      return (outcome, replaced, added)
    }
    if result.added { liveCount.add(1, ordering: .relaxed) }
    return (result.0, result.replaced)
  }

  /// When `hash` has an entry (at `offset`, if given), appends a record (a tombstone)
  /// and removes the entry, under the shard lock. nil when there is no such entry.
  func remove(
    _ hash: CacheHash, ifAt offset: Int? = nil, appending append: () -> RegionWriter.AppendOutcome
  ) -> (RegionWriter.AppendOutcome, removed: Int?)? {
    let tag = Self.tag(of: hash)
    let result = shard(for: hash).table.withLock { table -> (RegionWriter.AppendOutcome, removed: Int?)? in
      guard let slot = Self.find(table, tag: tag, offset: offset) else { return nil }
      let outcome = append()
      guard case .appended = outcome else { return (outcome, nil) }
      let old = Self.offset(ofWord: table.words[slot])
      table.words[slot] = Self.tombstone
      table.count -= 1
      table.tombstones += 1
      return (outcome, old)
    }
    if result?.removed != nil { liveCount.subtract(1, ordering: .relaxed) }
    return result
  }

  /// When `hash` still points at `offset` (and was read since written, if asked),
  /// appends a record (a copy, a new head) and points the entry at it. nil when not.
  func move(
    _ hash: CacheHash, from offset: Int, onlyIfAccessed: Bool, appending append: () -> RegionWriter.AppendOutcome
  ) -> RegionWriter.AppendOutcome? {
    let tag = Self.tag(of: hash)
    return shard(for: hash).table.withLock { table -> RegionWriter.AppendOutcome? in
      guard let slot = Self.find(table, tag: tag, offset: offset) else { return nil }
      if onlyIfAccessed && table.words[slot] & Self.accessedBit == 0 { return nil }
      let outcome = append()
      if case .appended(let location) = outcome {
        table.words[slot] =
          Self.validBit | (tag << Self.locationBits) | (Self.unit(ofOffset: location.offset) & Self.locationMask)
      }
      return outcome
    }
  }

  private static func find(_ table: Table, tag: UInt64, offset: Int?) -> Int? {
    var slot: Int?
    probe(table, tag: tag) { index in
      if slot == nil, offset == nil || Self.offset(ofWord: table.words[index]) == offset { slot = index }
    }
    return slot
  }

  /// Sets the entry of `tag` to `offset`; returns the offset replaced, or whether a slot was added.
  private static func put(_ table: inout Table, tag: UInt64, offset: Int) -> (replaced: Int?, added: Bool) {
    let word = validBit | (tag << locationBits) | (unit(ofOffset: offset) & locationMask)
    if let existing = find(table, tag: tag, offset: nil) {
      let old = Self.offset(ofWord: table.words[existing])
      table.words[existing] = word
      return (old, false)
    }
    growIfNeeded(&table)
    var index = home(tag: tag, capacity: table.words.count)
    while table.words[index] & validBit != 0 { index = index + 1 == table.words.count ? 0 : index + 1 }
    if table.words[index] == tombstone { table.tombstones -= 1 }
    table.words[index] = word
    table.count += 1
    return (nil, true)
  }

  /// Remembers that the object at `offset` was read, for reinsertion at reclaim.
  func markAccessed(_ hash: CacheHash, at offset: Int) {
    let tag = Self.tag(of: hash)
    shard(for: hash).table.withLock { table in
      var slot: Int?
      Self.probe(table, tag: tag) { index in
        if slot == nil, Self.offset(ofWord: table.words[index]) == offset { slot = index }
      }
      if let slot { table.words[slot] |= Self.accessedBit }
    }
  }

  /// Whether `hash` points at `offset` and was read since written.
  func wasAccessed(_ hash: CacheHash, at offset: Int) -> Bool {
    let tag = Self.tag(of: hash)
    return shard(for: hash).table.withLock { table in
      var accessed = false
      Self.probe(table, tag: tag) { index in
        let word = table.words[index]
        if Self.offset(ofWord: word) == offset && word & Self.accessedBit != 0 { accessed = true }
      }
      return accessed
    }
  }

  /// Calls `body` with the slot of each valid entry of `tag`, walking the probe sequence.
  @inline(__always)
  private static func probe(_ table: Table, tag: UInt64, _ body: (Int) -> Void) {
    let capacity = table.words.count
    var index = home(tag: tag, capacity: capacity)
    for _ in 0..<capacity {
      let word = table.words[index]
      if word == 0 { return }
      if word & validBit != 0 && (word >> locationBits) & tagMask == tag { body(index) }
      index = index + 1 == capacity ? 0 : index + 1
    }
  }

  /// Rebuilds the table (dropping tombstones, growing by half when live entries need it)
  /// before an insert would push the load above 90%.
  private static func growIfNeeded(_ table: inout Table) {
    let capacity = table.words.count
    guard (table.count + table.tombstones + 1) * 10 > capacity * 9 else { return }
    let newCapacity = (table.count + 1) * 10 > capacity * 6 ? capacity + capacity / 2 : capacity
    var words = ContiguousArray<UInt64>(repeating: 0, count: newCapacity)
    for word in table.words where word & validBit != 0 {
      let tag = (word >> locationBits) & tagMask
      var index = home(tag: tag, capacity: newCapacity)
      while words[index] != 0 { index = index + 1 == newCapacity ? 0 : index + 1 }
      words[index] = word
    }
    table.words = words
    table.tombstones = 0
  }
}
