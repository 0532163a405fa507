public import EdgeCDNStore

extension MemoryStoreConfiguration {
  /// Reads `byteBudget`, `maxObjectSize`, `shardCount`, `evictionPolicy` and `fileBodyThreshold` from a reader scoped to `memory`;
  /// missing settings keep the defaults of `MemoryStoreConfiguration()`, except that an unset
  /// `maxObjectSize` is lowered to a budget smaller than it, so that `--memory-byte-budget 8MiB`
  /// alone is a valid configuration. Ranges are checked by `validate()`, which names the same keys.
  public init(reading settings: SettingsReader) throws(ConfigurationError) {
    let defaults = MemoryStoreConfiguration()
    let byteBudget = try settings.size("byteBudget", default: ByteSize(bytes: defaults.byteBudget)).bytes
    let maxObjectDefault = ByteSize(bytes: min(defaults.maxObjectSize, max(byteBudget, 1)))
    self.init(
      byteBudget: byteBudget,
      maxObjectSize: try settings.size("maxObjectSize", default: maxObjectDefault).bytes,
      shardCount: try settings.int("shardCount", default: defaults.shardCount),
      evictionPolicy: try settings.choice("evictionPolicy", default: defaults.evictionPolicy),
      fileBodyThreshold: try settings.sizeOrOff(
        "fileBodyThreshold", default: ByteSize(bytes: defaults.fileBodyThreshold)
      ).bytes
    )
  }
}
