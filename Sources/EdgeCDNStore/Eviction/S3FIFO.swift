/// S3-FIFO (Yang et al., SOSP 2023): new objects enter a small FIFO holding a tenth
/// of the bytes; those reused there move to a main FIFO with reinsertion, the others
/// leave at once and are remembered in a ghost queue, so a returning key goes to main.
///
/// Why it beats LRU on CDN traffic: most objects are requested once (one-hit wonders),
/// and the small queue drops them quickly instead of letting them push popular ones out;
/// hits only set a 2-bit counter under the shard lock, with no list to relink.
public final class S3FIFO: S3FIFOFamily, @unchecked Sendable {
  public static let policyName = "s3fifo"

  /// - Parameters:
  ///   - capacity: the byte limit; admissions beyond it evict.
  ///   - shardCount: independent locks; more shards, less contention (default 16).
  public init(capacity: Int, shardCount: Int = 16) {
    super.init(
      engine: S3FIFOEngine(policyName: Self.policyName, capacity: capacity, shardCount: shardCount, admission: .ghost))
  }
}
