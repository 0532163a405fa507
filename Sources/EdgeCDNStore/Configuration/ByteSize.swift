/// An amount of bytes as an operator writes it: "512MiB", "2GB", "1.5 GiB", "64k" or "4096".
///
/// Grammar (spaces and tabs around the whole value are ignored):
///
///     size   = number [blank] [unit]
///     number = digits ["." digits]          (no sign, no exponent)
///     unit   = B
///            | KB | MB | GB | TB | PB       powers of 1000 (SI), as disks are sold
///            | KiB | MiB | GiB | TiB | PiB  powers of 1024 (IEC)
///            | K | M | G | T | P            powers of 1024, as nginx reads "64k"
///
/// Units are case-insensitive (there are no bit units to confuse them with). The result must be
/// a whole number of bytes that fits in an `Int`: "1.5KiB" is 1536, "1.5B" is rejected.
public struct ByteSize: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral {
  public var bytes: Int

  public init(bytes: Int) {
    precondition(bytes >= 0, "a ByteSize cannot be negative")
    self.bytes = bytes
  }

  public init(integerLiteral value: Int) {
    self.init(bytes: value)
  }

  /// What a size setting accepts, for error messages and docs.
  public static let grammarSummary =
    "a size such as 4096, 64KiB, 512MiB, 1.5GiB or 2GB (KB/MB/GB/TB/PB are powers of 1000; "
    + "K/M/G/T/P and KiB/MiB/GiB/TiB/PiB are powers of 1024)"

  static let units: [String: UInt64] = [
    "": 1, "b": 1,
    "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000, "tb": 1_000_000_000_000, "pb": 1_000_000_000_000_000,
    "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
  ]

  /// Parses `text`; errors name `setting` so the operator knows which line to fix.
  public init(parsing text: String, setting: String) throws(ConfigurationError) {
    let quoted = "\"\(text)\""
    func failure(_ allowed: String) -> ConfigurationError {
      ConfigurationError(setting: setting, value: quoted, allowed: allowed)
    }
    let input = Array(text.utf8)[...].trimmingBlanks()
    if input.first == UInt8(ascii: "-") {
      throw failure("a size that is not negative: " + Self.grammarSummary)
    }
    guard let number = DecimalQuantity.prefix(of: input) else {
      throw failure(Self.grammarSummary)
    }
    let rest = input.dropFirst(number.length).trimmingBlanks()
    let unit = rest.leadingLetters()
    guard unit.length == rest.count, let multiplier = Self.units[unit.lowercased] else {
      throw failure("a known unit: " + Self.grammarSummary)
    }
    switch number.quantity.scaled(by: multiplier) {
    case .success(let bytes):
      self.init(bytes: bytes)
    case .failure(.overflow):
      throw failure("at most \(Int.max) bytes (8 EiB)")
    case .failure(.notWhole):
      throw failure("a whole number of bytes: " + Self.grammarSummary)
    }
  }

  /// The shortest exact spelling, e.g. "512MiB", "2GB", "4097B"; it parses back to the same size.
  public var description: String {
    guard bytes > 0 else { return "0B" }
    let candidates: [(String, Int)] = [
      ("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
      ("PB", 1_000_000_000_000_000), ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000),
      ("KB", 1_000),
    ]
    var best = (unit: "B", count: bytes)
    for (unit, size) in candidates where bytes % size == 0 && bytes / size < best.count {
      best = (unit, bytes / size)
    }
    return "\(best.count)\(best.unit)"
  }

  public static func < (lhs: ByteSize, rhs: ByteSize) -> Bool { lhs.bytes < rhs.bytes }
}
