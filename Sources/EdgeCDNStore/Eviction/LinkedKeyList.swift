/// A doubly linked list of keys with weights, stored in parallel arrays and linked by
/// index, with a hash index to find a key's node.
///
/// Why not a class per node: one allocation and a refcount per tracked object would
/// cost more RAM and time than the policy itself. Here a node is 32 bytes of arrays
/// plus its dictionary slot, and free slots are reused.
struct LinkedKeyList {
  private(set) var weightTotal = 0
  private var index: [CacheHash: Int32] = [:]
  private var keys: [CacheHash] = []
  private var weights: [Int] = []
  private var previous: [Int32] = []
  private var next: [Int32] = []
  private var freeSlots: [Int32] = []
  /// Most recently inserted or promoted.
  private var head: Int32 = -1
  /// Least recently inserted or promoted: the next to evict.
  private var tail: Int32 = -1

  var count: Int { index.count }
  var isEmpty: Bool { index.isEmpty }

  func contains(_ key: CacheHash) -> Bool { index[key] != nil }

  func weight(of key: CacheHash) -> Int? { index[key].map { weights[Int($0)] } }

  /// Inserts at the head, or updates the weight and moves to the head; returns the
  /// previous weight when the key was present.
  @discardableResult
  mutating func insertOrPromote(_ key: CacheHash, weight: Int) -> Int? {
    if let slot = index[key] {
      let old = weights[Int(slot)]
      weights[Int(slot)] = weight
      weightTotal += weight - old
      moveToHead(slot)
      return old
    }
    let slot: Int32
    if let reused = freeSlots.popLast() {
      slot = reused
      keys[Int(slot)] = key
      weights[Int(slot)] = weight
    } else {
      slot = Int32(keys.count)
      keys.append(key)
      weights.append(weight)
      previous.append(-1)
      next.append(-1)
    }
    index[key] = slot
    weightTotal += weight
    linkAtHead(slot)
    return nil
  }

  /// Moves a present key to the head; false when absent.
  @discardableResult
  mutating func promote(_ key: CacheHash) -> Bool {
    guard let slot = index[key] else { return false }
    moveToHead(slot)
    return true
  }

  /// Changes a present key's weight without moving it; returns the new weight.
  mutating func adjustWeight(_ key: CacheHash, by delta: Int) -> Int? {
    guard let slot = index[key] else { return nil }
    weights[Int(slot)] += delta
    weightTotal += delta
    return weights[Int(slot)]
  }

  /// Removes a key; returns its weight when it was present.
  @discardableResult
  mutating func remove(_ key: CacheHash) -> Int? {
    guard let slot = index.removeValue(forKey: key) else { return nil }
    unlink(slot)
    let weight = weights[Int(slot)]
    weightTotal -= weight
    freeSlots.append(slot)
    return weight
  }

  /// Removes and returns the tail (least recent).
  mutating func popTail() -> (key: CacheHash, weight: Int)? {
    guard tail >= 0 else { return nil }
    let key = keys[Int(tail)]
    guard let weight = remove(key) else { return nil }
    return (key, weight)
  }

  /// The tail without removing it.
  var tailKey: CacheHash? { tail >= 0 ? keys[Int(tail)] : nil }

  /// Keys from tail (least recent) to head, with weights.
  func fromTail() -> [(key: CacheHash, weight: Int)] {
    var out = [(key: CacheHash, weight: Int)]()
    out.reserveCapacity(count)
    var slot = tail
    while slot >= 0 {
      out.append((keys[Int(slot)], weights[Int(slot)]))
      slot = previous[Int(slot)]
    }
    return out
  }

  mutating func removeAll() { self = LinkedKeyList() }

  /// Bytes of RAM held per key, counting the arrays' capacity and the dictionary's
  /// buckets (key, value and one metadata byte each), for the memory reports.
  var approximateBytes: Int {
    let arrays =
      keys.capacity * 16 + weights.capacity * 8 + previous.capacity * 4 + next.capacity * 4
      + freeSlots.capacity * 4
    let dictionary = index.capacity * (16 + 4) + index.capacity / 8 * 9
    return arrays + dictionary
  }

  private mutating func linkAtHead(_ slot: Int32) {
    previous[Int(slot)] = -1
    next[Int(slot)] = head
    if head >= 0 { previous[Int(head)] = slot }
    head = slot
    if tail < 0 { tail = slot }
  }

  private mutating func unlink(_ slot: Int32) {
    let p = previous[Int(slot)]
    let n = next[Int(slot)]
    if p >= 0 { next[Int(p)] = n } else { head = n }
    if n >= 0 { previous[Int(n)] = p } else { tail = p }
    previous[Int(slot)] = -1
    next[Int(slot)] = -1
  }

  private mutating func moveToHead(_ slot: Int32) {
    guard head != slot else { return }
    unlink(slot)
    linkAtHead(slot)
  }
}
