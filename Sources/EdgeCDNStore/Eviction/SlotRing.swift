/// A growable FIFO of 32-bit slot numbers in a ring buffer: S3-FIFO's small and main
/// queues. Four bytes per queued entry and no allocation per push, unlike a linked list.
struct SlotRing {
  private var storage: [UInt32] = []
  private var head = 0
  private(set) var count = 0

  var isEmpty: Bool { count == 0 }

  mutating func pushBack(_ slot: UInt32) {
    if count == storage.count { grow() }
    storage[(head + count) & (storage.count - 1)] = slot
    count += 1
  }

  mutating func popFront() -> UInt32? {
    guard count > 0 else { return nil }
    let slot = storage[head]
    head = (head + 1) & (storage.count - 1)
    count -= 1
    return slot
  }

  /// The oldest slot, without removing it.
  var first: UInt32? { count > 0 ? storage[head] : nil }

  /// The slot `offset` places behind the front.
  subscript(offset: Int) -> UInt32 { storage[(head + offset) & (storage.count - 1)] }

  /// The slots from front (oldest) to back.
  func inOrder() -> [UInt32] {
    var out = [UInt32]()
    out.reserveCapacity(count)
    for i in 0..<count { out.append(storage[(head + i) & (storage.count - 1)]) }
    return out
  }

  /// Keeps only the slots `keep` accepts, in order: drops removed entries' leftovers.
  mutating func retain(where keep: (UInt32) -> Bool) {
    let kept = inOrder().filter(keep)
    var capacity = 16
    while capacity < kept.count * 2 { capacity <<= 1 }
    storage = [UInt32](repeating: 0, count: capacity)
    for (i, slot) in kept.enumerated() { storage[i] = slot }
    head = 0
    count = kept.count
  }

  var approximateBytes: Int { storage.capacity * 4 }

  private mutating func grow() {
    let old = inOrder()
    let capacity = max(16, storage.count * 2)
    storage = [UInt32](repeating: 0, count: capacity)
    for (i, slot) in old.enumerated() { storage[i] = slot }
    head = 0
  }
}
