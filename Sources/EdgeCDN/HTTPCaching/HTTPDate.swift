#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// HTTP-date (RFC 9110 §5.6.7) to and from seconds since the epoch, without Foundation:
/// the formatter runs on every response (Date, Age math) and must not allocate a
/// DateFormatter or take its locks.
public enum HTTPDate {
  private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
  private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

  /// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
  public static func format(secondsSinceEpoch: Int64) -> String {
    var t = time_t(secondsSinceEpoch)
    var parts = tm()
    gmtime_r(&t, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let day = days[Int(parts.tm_wday) % 7]
    let month = months[Int(parts.tm_mon) % 12]
    return
      "\(day), \(two(parts.tm_mday)) \(month) \(parts.tm_year + 1900) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
  }

  /// Parses IMF-fixdate, the obsolete RFC 850 form and asctime; nil when it is none of them
  /// (an invalid Expires then means "already expired", which the caller decides).
  public static func parse(_ value: String) -> Int64? {
    parseFixdate(value) ?? parseTokens(value)
  }

  /// Any of the three forms, from its tokens.
  static func parseTokens(_ value: String) -> Int64? {
    let tokens = value.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" }).map(String.init)
    // IMF-fixdate: Sun 06 Nov 1994 08:49:37 GMT; RFC 850: Sunday 06 Nov 94 08:49:37 GMT
    if tokens.count == 6, tokens[5] == "GMT" {
      return make(day: tokens[1], month: tokens[2], year: tokens[3], time: tokens[4])
    }
    // asctime: Sun Nov  6 08:49:37 1994
    if tokens.count == 5 {
      return make(day: tokens[2], month: tokens[1], year: tokens[4], time: tokens[3])
    }
    return nil
  }

  /// IMF-fixdate, the form current servers send, read from its bytes at their fixed
  /// places: no split, no Strings, no `timegm`. Why: a miss parses Date (and often
  /// Last-Modified or Expires) of every response. Nil for anything else, which the general
  /// parser then reads; when this returns a value it is the one the general parser gives.
  static func parseFixdate(_ value: String) -> Int64? {
    var value = value
    return value.withUTF8 { b -> Int64? in
      // Sun, 06 Nov 1994 08:49:37 GMT
      guard b.count == 29, b[3] == UInt8(ascii: ","), b[4] == 0x20, b[7] == 0x20, b[11] == 0x20, b[16] == 0x20,
        b[25] == 0x20, b[19] == UInt8(ascii: ":"), b[22] == UInt8(ascii: ":"), b[26] == UInt8(ascii: "G"),
        b[27] == UInt8(ascii: "M"), b[28] == UInt8(ascii: "T")
      else { return nil }
      func number(_ start: Int, _ count: Int) -> Int64? {
        var n: Int64 = 0
        for i in start..<(start + count) {
          let digit = b[i] &- UInt8(ascii: "0")
          guard digit < 10 else { return nil }
          n = n * 10 + Int64(digit)
        }
        return n
      }
      guard let day = number(5, 2), (1...31).contains(day), let year = number(12, 4), let hour = number(17, 2),
        hour <= 23, let minute = number(20, 2), minute <= 59, let second = number(23, 2), second <= 60,
        let month = monthBytes.firstIndex(where: { $0.0 == b[8] && $0.1 == b[9] && $0.2 == b[10] })
      else { return nil }
      guard day <= daysIn(month: Int64(month) + 1, year: year) else { return nil }
      return daysFromCivil(year: year, month: Int64(month) + 1, day: day) * 86_400 + hour * 3600 + minute * 60
        + second
    }
  }

  private static let monthBytes: [(UInt8, UInt8, UInt8)] = months.map {
    let u = Array($0.utf8)
    return (u[0], u[1], u[2])
  }

  /// The days of `month` (1...12) in `year`: a date past them (31 Feb) is no date, and an
  /// invalid Expires means already expired (RFC 9111 §5.3), not a later day.
  static func daysIn(month: Int64, year: Int64) -> Int64 {
    switch month {
    case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
  static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
  }

  private static func make(day: String, month: String, year: String, time: String) -> Int64? {
    guard let d = Int32(day), (1...31).contains(d), let m = months.firstIndex(of: month), var y = Int32(year) else {
      return nil
    }
    if year.count == 2 { y += y < 70 ? 2000 : 1900 }
    guard Int64(d) <= daysIn(month: Int64(m) + 1, year: Int64(y)) else { return nil }
    let hms = time.split(separator: ":")
    guard hms.count == 3, let h = Int32(hms[0]), let mi = Int32(hms[1]), let s = Int32(hms[2]),
      (0...23).contains(h), (0...59).contains(mi), (0...60).contains(s)
    else { return nil }
    var parts = tm()
    parts.tm_year = y - 1900
    parts.tm_mon = Int32(m)
    parts.tm_mday = d
    parts.tm_hour = h
    parts.tm_min = mi
    parts.tm_sec = s
    return Int64(timegm(&parts))
  }
}
