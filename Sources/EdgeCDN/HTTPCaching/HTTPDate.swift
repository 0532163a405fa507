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

  private static func make(day: String, month: String, year: String, time: String) -> Int64? {
    guard let d = Int32(day), (1...31).contains(d), let m = months.firstIndex(of: month), var y = Int32(year) else {
      return nil
    }
    if year.count == 2 { y += y < 70 ? 2000 : 1900 }
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
