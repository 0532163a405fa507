/// Every tunable of the store in one value, one stored property per tier, so an executable can
/// read, validate and log its whole configuration at once. Pure data: reading it from files,
/// environment variables and arguments lives in the EdgeCDNConfiguration module, so embedding the
/// store does not pull in a configuration library.
///
/// A tier adds itself with one stored property (defaulted, so existing call sites keep
/// compiling), one line in `validate()` and one reader extension in EdgeCDNConfiguration; see
/// docs/configuration.md, "How a tier adds its settings".
public struct StoreConfiguration: Sendable, Hashable {
  /// The RAM tier.
  public var memory: MemoryStoreConfiguration
  /// The disk tier; nil runs RAM only. By default a 1 GiB cache file in
  /// `DiskStoreConfiguration.defaultPath`, relative to the working directory.
  public var disk: DiskStoreConfiguration?
  /// How the tiers are composed (promotion into RAM, filling from and writing behind to the
  /// shared tier) and the shared tier client's limits; read from the `tiered` and `shared` keys.
  public var tiered: TieredStoreConfiguration

  public init(
    memory: MemoryStoreConfiguration = MemoryStoreConfiguration(),
    disk: DiskStoreConfiguration? = DiskStoreConfiguration(path: DiskStoreConfiguration.defaultPath),
    tiered: TieredStoreConfiguration = TieredStoreConfiguration()
  ) {
    self.memory = memory
    self.disk = disk
    self.tiered = tiered
  }

  /// Checks every tier's part; the first problem found is thrown, named by its full key.
  public func validate() throws(ConfigurationError) {
    try memory.validate()
    try disk?.validate()
    try tiered.validate()
  }
}
