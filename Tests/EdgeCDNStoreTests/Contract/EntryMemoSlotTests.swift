import Testing

@testable import EdgeCDNStore

/// `EntryMemoSlot`: the first value kept wins, and a read as another type finds nothing,
/// whether the type differs, is a superclass or a subclass of what was kept.
@Suite struct EntryMemoSlotTests {
  class Base: @unchecked Sendable {}
  final class Derived: Base, @unchecked Sendable {}
  final class Other: Sendable {}

  @Test func theFirstValueKeptIsTheOneRead() {
    let slot = EntryMemoSlot()
    #expect(slot.value(as: Other.self) == nil)
    let first = Other()
    let kept: Other? = slot.keep(first)
    #expect(kept === first)
    let later: Other? = slot.keep(Other())
    #expect(later === first, "a later value finds the first one")
    #expect(slot.value(as: Other.self) === first)
  }

  @Test func aReadAsAnotherTypeFindsNothing() {
    let slot = EntryMemoSlot()
    let derived = Derived()
    let keptDerived: Derived? = slot.keep(derived)
    #expect(keptDerived === derived)
    #expect(slot.value(as: Other.self) == nil)
    #expect(slot.value(as: Derived.self) === derived)
    #expect(slot.value(as: Base.self) === derived, "a subclass reads as its superclass, as `as?` does")
    let notOther: Other? = slot.keep(Other())
    #expect(notOther == nil, "the kept value is not an Other")
    let base = EntryMemoSlot()
    let keptBase: Base? = base.keep(Base())
    #expect(keptBase != nil)
    #expect(base.value(as: Derived.self) == nil)
  }
}
