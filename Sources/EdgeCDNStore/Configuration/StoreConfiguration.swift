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

  public init(
    memory: MemoryStoreConfiguration = MemoryStoreConfiguration()
  ) {
    self.memory = memory
  }

  /// Checks every tier's part; the first problem found is thrown, named by its full key.
  public func validate() throws(ConfigurationError) {
    try memory.validate()
  }
}
