/// The RAM tier's settings. Defaults suit a laptop; `validate()` names the setting,
/// the bad value and the allowed range.
public struct MemoryStoreConfiguration: Sendable, Hashable {
  /// Bytes of bodies and metadata the tier may hold, in-flight writes included.
  public var byteBudget: Int
  /// The largest object accepted; larger writes fail with `objectTooLarge`.
  public var maxObjectSize: Int
  /// Independent index locks; more shards, less contention between tasks.
  public var shardCount: Int
  /// Which objects stay when the budget is full, unless the store is given a manager.
  public var evictionPolicy: EvictionPolicy
  /// Committed bodies of at least this many bytes are kept in a RAM file (memfd) instead
  /// of buffers, so hits are sent with sendfile, without copying them into the socket;
  /// 0 keeps every body in buffers. Each such object holds one file descriptor.
  public var fileBodyThreshold: Int

  public init(
    byteBudget: Int = 256 << 20, maxObjectSize: Int = 16 << 20, shardCount: Int = 64,
    evictionPolicy: EvictionPolicy = .s3fifo, fileBodyThreshold: Int = 64 << 10
  ) {
    self.byteBudget = byteBudget
    self.maxObjectSize = maxObjectSize
    self.shardCount = shardCount
    self.evictionPolicy = evictionPolicy
    self.fileBodyThreshold = fileBodyThreshold
  }

  public static let shardCountRange = 1...4096

  public func validate() throws(ConfigurationError) {
    guard byteBudget >= 4096 else {
      throw ConfigurationError(setting: "memory.byteBudget", value: "\(byteBudget)", allowed: "at least 4096 bytes")
    }
    guard (1...byteBudget).contains(maxObjectSize) else {
      throw ConfigurationError(
        setting: "memory.maxObjectSize", value: "\(maxObjectSize)", allowed: "1...\(byteBudget) (the byte budget)")
    }
    guard Self.shardCountRange.contains(shardCount) else {
      throw ConfigurationError(
        setting: "memory.shardCount", value: "\(shardCount)",
        allowed: "\(Self.shardCountRange.lowerBound)...\(Self.shardCountRange.upperBound)")
    }
    guard fileBodyThreshold >= 0 else {
      throw ConfigurationError(
        setting: "memory.fileBodyThreshold", value: "\(fileBodyThreshold)", allowed: "0 (off) or a size in bytes")
    }
  }
}
