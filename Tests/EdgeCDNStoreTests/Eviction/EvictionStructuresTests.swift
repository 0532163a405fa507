import Testing

@testable import EdgeCDNStore

@Suite("Structures behind S3-FIFO: probing table, slot ring, count-min sketch")
struct EvictionStructuresTests {
  /// A deterministic generator for the model tests.
  struct Random {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  @Test("the probing table agrees with a Set under random inserts and removes, with many collisions")
  func probingTableModel() {
    // Homes collide on purpose (values share a home in groups of 8) to exercise
    // wrap-around runs and backward-shift deletion.
    let home: (UInt32) -> UInt64 = { UInt64($0 / 8) &* 0x9E37_79B9_7F4A_7C15 >> 40 }
    var table = ProbingTable()
    var model = Set<UInt32>()
    var random = Random(state: 1)
    for _ in 0..<20_000 {
      let value = UInt32(random.next() % 3000) + 1
      let bucket = table.find(home: home(value)) { $0 == value }
      #expect((bucket != nil) == model.contains(value))
      if let bucket {
        table.remove(at: bucket, homeOf: home)
        model.remove(value)
      } else {
        table.insert(value, home: home(value), homeOf: home)
        model.insert(value)
      }
    }
    #expect(table.count == model.count)
    for value in UInt32(1)...3000 {
      #expect((table.find(home: home(value)) { $0 == value } != nil) == model.contains(value))
    }
  }

  @Test("the slot ring is a FIFO across growth and wrap-around, and retain keeps order")
  func slotRing() {
    var ring = SlotRing()
    var model: [UInt32] = []
    var random = Random(state: 2)
    for i in 0..<5000 {
      if random.next() % 3 == 0 {
        #expect(ring.popFront() == (model.isEmpty ? nil : model.removeFirst()))
      } else {
        ring.pushBack(UInt32(i))
        model.append(UInt32(i))
      }
      #expect(ring.count == model.count)
      #expect(ring.first == model.first)
    }
    ring.retain { $0 % 2 == 0 }
    #expect(ring.inOrder() == model.filter { $0 % 2 == 0 })
  }

  @Test("the sketch never under-estimates before aging, and aging halves")
  func sketch() {
    var sketch = CountMinSketch(width: 1024)
    var random = Random(state: 3)
    var counts: [UInt64: Int] = [:]
    for _ in 0..<5000 {
      let key = random.next() % 500 &* 0x9E37_79B9_7F4A_7C15
      sketch.increment(key)
      counts[key, default: 0] += 1
    }
    for (key, count) in counts { #expect(sketch.estimate(key) >= min(count, 255)) }
    let hot = counts.max { $0.value < $1.value }?.key ?? 0
    let before = sketch.estimate(hot)
    sketch.age()
    #expect(sketch.estimate(hot) == before / 2)
    #expect(sketch.estimate(0xDEAD_BEEF) <= 2)
  }
}
