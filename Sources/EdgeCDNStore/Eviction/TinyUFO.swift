/// S3-FIFO with TinyLFU admission into main, after Cloudflare's TinyUFO (pingora): a
/// count-min sketch with aging counts recent requests per key (hits and misses), and a
/// key coming back from the ghost queue enters main only if the sketch ranks it at
/// least as high as main's next victim; otherwise it starts over in the small queue.
///
/// Why a filter on the ghost: a ghost hit only says "seen once recently", which lets a
/// key requested twice displace one requested a hundred times; the sketch remembers
/// frequency over a window many times the cache. Measured alternatives (the sketch also
/// promoting unused keys out of small, or replacing the ghost as in pingora) missed more
/// on the Zipf workloads; see docs/performance.md.
public final class TinyUFO: S3FIFOFamily, @unchecked Sendable {
  public static let policyName = "tinyufo"

  /// - Parameters:
  ///   - capacity: the byte limit; admissions beyond it evict.
  ///   - shardCount: independent locks; more shards, less contention (default 16).
  public init(capacity: Int, shardCount: Int = 16) {
    super.init(
      engine: S3FIFOEngine(policyName: Self.policyName, capacity: capacity, shardCount: shardCount, admission: .sketch))
  }
}
