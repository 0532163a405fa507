/// Byte-level checks on HTTP's ASCII syntax, shared by the request scanner and the
/// response encoders. Why by hand: they run per request on bytes that are not Strings
/// yet (or whose String form would cost an allocation), and no package exposes them.
enum ASCII {
  /// `text` equals the lowercase `lower`, ignoring ASCII case.
  static func equals<Bytes: Collection<UInt8>>(_ text: Bytes, _ lower: StaticString) -> Bool {
    guard text.count == lower.utf8CodeUnitCount else { return false }
    return hasPrefix(text, lower)
  }

  /// `text` starts with the lowercase `lower`, ignoring ASCII case.
  static func hasPrefix<Bytes: Collection<UInt8>>(_ text: Bytes, _ lower: StaticString) -> Bool {
    guard text.count >= lower.utf8CodeUnitCount else { return false }
    return lower.withUTF8Buffer { expected in
      zip(text, expected).allSatisfy { a, b in a == b || (a >= 0x41 && a <= 0x5a && a | 0x20 == b) }
    }
  }

  /// RFC 9110 tchar: what a method and a field name are made of.
  static func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
      UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"),
      UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"),
      UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"),
      UInt8(ascii: "|"), UInt8(ascii: "~"):
      true
    default: false
    }
  }

  /// What a Host field's value may hold (RFC 9110 §7.2: uri-host [":" port], with
  /// RFC 3986's reg-name, IPv4 and IP-literal characters). Why it matters: the cache key
  /// is the host then the target, so a Host with a "/" in it ("victim.test/evil" with
  /// target "/p") would name another URL's object ("victim.test" with "/evil/p").
  static func isHostByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
      UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
      UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"),
      UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","),
      UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: "%"), UInt8(ascii: ":"), UInt8(ascii: "["),
      UInt8(ascii: "]"):
      true
    default: false
    }
  }
}
