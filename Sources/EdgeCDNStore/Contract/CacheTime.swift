#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Wall-clock time in milliseconds since the Unix epoch.
///
/// Metadata is persisted and shared between processes, so it needs an absolute,
/// portable instant; an integer keeps the encoding exact and Foundation out of the store.
public struct CacheTime: Hashable, Comparable, Sendable, CustomStringConvertible {
  public var millisecondsSinceEpoch: Int64

  public init(millisecondsSinceEpoch: Int64) {
    self.millisecondsSinceEpoch = millisecondsSinceEpoch
  }

  public init(secondsSinceEpoch: Int64) {
    self.millisecondsSinceEpoch = secondsSinceEpoch &* 1000
  }

  public static func now() -> CacheTime {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return CacheTime(millisecondsSinceEpoch: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
  }

  public var secondsSinceEpoch: Int64 { millisecondsSinceEpoch / 1000 }

  public func adding(seconds: Int64) -> CacheTime {
    CacheTime(millisecondsSinceEpoch: millisecondsSinceEpoch &+ seconds &* 1000)
  }

  public func adding(milliseconds: Int64) -> CacheTime {
    CacheTime(millisecondsSinceEpoch: millisecondsSinceEpoch &+ milliseconds)
  }

  public static func < (lhs: CacheTime, rhs: CacheTime) -> Bool {
    lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
  }

  public var description: String { "\(millisecondsSinceEpoch)ms" }
}
