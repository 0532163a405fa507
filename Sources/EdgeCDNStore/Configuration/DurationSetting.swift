/// A span of time as an operator writes it: "500ms", "30s", "5m", "1h", "1h30m", "1.5s".
///
/// Grammar (spaces and tabs around the value and between terms are ignored):
///
///     duration = term { term }              e.g. "1h30m"
///     term     = number [blank] unit
///     number   = digits ["." digits]        (no sign, no exponent)
///     unit     = ns | us | ms | s | m | h   (case-insensitive)
///
/// A unit is required, so "30" is rejected rather than guessed as seconds or milliseconds. The
/// total must be a whole number of nanoseconds and fit in 64 bits (about 292 years).
public struct DurationSetting: Sendable, Hashable, Comparable, CustomStringConvertible {
  public var nanoseconds: Int64

  public init(nanoseconds: Int64) {
    precondition(nanoseconds >= 0, "a DurationSetting cannot be negative")
    self.nanoseconds = nanoseconds
  }

  public static func milliseconds(_ value: Int64) -> DurationSetting { .init(nanoseconds: value * 1_000_000) }
  public static func seconds(_ value: Int64) -> DurationSetting { .init(nanoseconds: value * 1_000_000_000) }

  public var duration: Duration { .nanoseconds(nanoseconds) }

  /// What a duration setting accepts, for error messages and docs.
  public static let grammarSummary = "a duration such as 500ms, 30s, 5m, 1h or 1h30m (units ns, us, ms, s, m, h)"

  static let units: [String: UInt64] = [
    "ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
  ]

  /// Parses `text`; errors name `setting` so the operator knows which line to fix.
  public init(parsing text: String, setting: String) throws(ConfigurationError) {
    let quoted = "\"\(text)\""
    func failure(_ allowed: String) -> ConfigurationError {
      ConfigurationError(setting: setting, value: quoted, allowed: allowed)
    }
    var rest = Array(text.utf8)[...].trimmingBlanks()
    if rest.first == UInt8(ascii: "-") {
      throw failure("a duration that is not negative: " + Self.grammarSummary)
    }
    guard !rest.isEmpty else { throw failure(Self.grammarSummary) }
    var total: Int64 = 0
    while !rest.isEmpty {
      guard let number = DecimalQuantity.prefix(of: rest) else { throw failure(Self.grammarSummary) }
      rest = rest.dropFirst(number.length).trimmingBlanks()
      let unit = rest.leadingLetters()
      guard unit.length > 0 else { throw failure("a unit after every number: " + Self.grammarSummary) }
      guard let multiplier = Self.units[unit.lowercased] else {
        throw failure("a known unit: " + Self.grammarSummary)
      }
      rest = rest.dropFirst(unit.length).trimmingBlanks()
      switch number.quantity.scaled(by: multiplier) {
      case .success(let nanoseconds):
        let (sum, overflow) = total.addingReportingOverflow(Int64(nanoseconds))
        guard !overflow else { throw failure("at most \(Int64.max) nanoseconds (about 292 years)") }
        total = sum
      case .failure(.overflow):
        throw failure("at most \(Int64.max) nanoseconds (about 292 years)")
      case .failure(.notWhole):
        throw failure("a whole number of nanoseconds: " + Self.grammarSummary)
      }
    }
    self.init(nanoseconds: total)
  }

  /// The shortest exact spelling in one unit, e.g. "500ms", "90s", "2h"; it parses back unchanged.
  public var description: String {
    guard nanoseconds > 0 else { return "0s" }
    let candidates: [(String, Int64)] = [
      ("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000),
    ]
    for (unit, size) in candidates where nanoseconds % size == 0 {
      return "\(nanoseconds / size)\(unit)"
    }
    return "\(nanoseconds)ns"
  }

  public static func < (lhs: DurationSetting, rhs: DurationSetting) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
}
