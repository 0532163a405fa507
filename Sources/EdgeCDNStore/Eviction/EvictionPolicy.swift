/// The eviction policies a store can be configured with, by the name used in
/// configuration files, state files and bench output.
public enum EvictionPolicy: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
  /// Least recently used, sharded: the baseline.
  case lru
  /// S3-FIFO with a ghost queue.
  case s3fifo
  /// S3-FIFO queues with TinyLFU admission from a count-min sketch.
  case tinyufo

  /// Parses a configured name (case-insensitive), naming the setting and the choices
  /// when it is unknown.
  public init(parsing name: String, setting: String = "eviction.policy") throws(ConfigurationError) {
    guard let policy = EvictionPolicy(rawValue: name.lowercased()) else {
      throw ConfigurationError(
        setting: setting, value: "\"\(name)\"", allowed: Self.allCases.map(\.rawValue).joined(separator: ", "))
    }
    self = policy
  }

  public var description: String { rawValue }

  /// A manager of this policy with a byte limit and independent shards.
  public func makeManager(capacity: Int, shards: Int = 16) -> any EvictionManager {
    switch self {
    case .lru: ShardedLRU(capacity: capacity, shardCount: shards)
    case .s3fifo: S3FIFO(capacity: capacity, shardCount: shards)
    case .tinyufo: TinyUFO(capacity: capacity, shardCount: shards)
    }
  }
}
