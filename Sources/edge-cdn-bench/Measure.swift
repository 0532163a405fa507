#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The arithmetic every bench does alike, once.
enum Measure {
  /// A duration in seconds, for rates and the printed figures.
  static func seconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) + Double(attoseconds) / 1e18
  }

  /// The middle value (the upper of the two for an even count). NaN for none, so that a
  /// figure nobody measured prints as nan instead of a plausible 0.
  static func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    return values.sorted()[values.count / 2]
  }
}

/// The process's CPU time, user plus system, all threads (`getrusage`). On a shared
/// machine wall time counts the time we were not scheduled; CPU time does not.
enum ProcessCPUTime {
  static func nanoseconds() -> Int64 {
    var usage = rusage()
    guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
    func ns(_ time: timeval) -> Int64 { Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_usec) * 1000 }
    return ns(usage.ru_utime) + ns(usage.ru_stime)
  }

  static func seconds() -> Double { Double(nanoseconds()) / 1e9 }
}
