public import EdgeCDNStore

extension MemoryStoreConfiguration {
  /// Reads `byteBudget`, `maxObjectSize`, `shardCount` and `evictionPolicy` from a reader scoped to `memory`;
  /// missing settings keep the defaults of `MemoryStoreConfiguration()`. Ranges are checked by
  /// `validate()`, which names the same keys.
  public init(reading settings: SettingsReader) throws(ConfigurationError) {
    let defaults = MemoryStoreConfiguration()
    self.init(
      byteBudget: try settings.size("byteBudget", default: ByteSize(bytes: defaults.byteBudget)).bytes,
      maxObjectSize: try settings.size("maxObjectSize", default: ByteSize(bytes: defaults.maxObjectSize)).bytes,
      shardCount: try settings.int("shardCount", default: defaults.shardCount),
      evictionPolicy: try settings.choice("evictionPolicy", default: defaults.evictionPolicy)
    )
  }
}
