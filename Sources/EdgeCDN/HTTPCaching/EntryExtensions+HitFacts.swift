extension EntryExtensions {
  /// What serving a fresh hit needs of the extensions.
  struct HitFacts: Hashable {
    var initialAge: Int64 = 0
    var isVaryIndex = false
  }

  /// Reads `initialAge` and `isVaryIndex` straight from the encoded bytes, as
  /// `init(decoding:)` would decode them, without building a string and its fields:
  /// that decoding measured as a visible share of a small hit.
  static func hitFacts(of bytes: [UInt8]) -> HitFacts {
    var facts = HitFacts()
    let prefix = Self.prefix.utf8
    var index = 0
    // The first field must be the prefix itself (empty fields are skipped, as split does).
    while index < bytes.count, bytes[index] == UInt8(ascii: ";") { index += 1 }
    guard bytes[index...].starts(with: prefix) else { return facts }
    index += prefix.count
    guard index == bytes.count || bytes[index] == UInt8(ascii: ";") else { return facts }
    while index < bytes.count {
      index += 1
      let start = index
      while index < bytes.count, bytes[index] != UInt8(ascii: ";") { index += 1 }
      let field = bytes[start..<index]
      if field.elementsEqual("index".utf8) {
        facts.isVaryIndex = true
      } else if field.starts(with: "age=".utf8) {
        facts.initialAge = parseInt64(field.dropFirst(4)) ?? 0
      }
    }
    return facts
  }

  /// A decimal with an optional sign, as `Int64(_:)` parses it; nil on anything else.
  private static func parseInt64(_ digits: ArraySlice<UInt8>) -> Int64? {
    var rest = digits
    var negative = false
    if let sign = rest.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
      negative = sign == UInt8(ascii: "-")
      rest = rest.dropFirst()
    }
    guard !rest.isEmpty else { return nil }
    var value: Int64 = 0
    for byte in rest {
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
      let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
      guard !overflow1, !overflow2 else { return nil }
      value = sum
    }
    return negative ? -value : value
  }
}
