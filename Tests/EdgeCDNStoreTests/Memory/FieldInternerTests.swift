import Testing

@testable import EdgeCDNStore

/// `FieldInterner`: equal field strings share one storage; small ones (held inline) and
/// long ones (which would grow a table outside the budget) are left as they are.
@Suite struct FieldInternerTests {
  /// Whether two strings share their UTF-8 storage.
  static func shareStorage(_ a: String, _ b: String) -> Bool {
    var a = a
    var b = b
    let pa = a.withUTF8 { UnsafeRawPointer($0.baseAddress) }
    let pb = b.withUTF8 { UnsafeRawPointer($0.baseAddress) }
    return pa != nil && pa == pb
  }

  @Test func equalFieldValuesShareOneStorage() {
    let interner = FieldInterner()
    let first = interner.intern(String(repeating: "public, max-age=3600 ", count: 2))
    let second = interner.intern(String(repeating: "public, max-age=3600 ", count: 2))
    #expect(first == second)
    #expect(Self.shareStorage(first, second))
  }

  @Test func longValuesAreNotHeld() {
    let interner = FieldInterner()
    let long = String(repeating: "x", count: FieldInterner.maxInternedBytes + 1)
    let first = interner.intern(long + "")
    let second = interner.intern(String(repeating: "x", count: FieldInterner.maxInternedBytes + 1))
    #expect(first == second)
    #expect(!Self.shareStorage(first, second), "a value over the limit is not kept in the table")
    let atLimit = String(repeating: "y", count: FieldInterner.maxInternedBytes)
    #expect(
      Self.shareStorage(
        interner.intern(atLimit + ""), interner.intern(String(repeating: "y", count: FieldInterner.maxInternedBytes))))
  }
}
