extension TieredStoreConfiguration {
  /// Bounds of the promotion rule: past 64 hits a key is better never promoted, and a window
  /// longer than a day keeps counts the bounded counter forgets long before.
  public static let promotionHitsRange = 1...64
  public static let promotionWindowRange = Duration.milliseconds(1)...Duration.seconds(86_400)
  /// From a few keys to 16 Mi (about 1 GiB of counting map at the top).
  public static let promotionTrackedKeysRange = 16...(1 << 24)

  /// Checks the tiered store's own settings, then the shared tier client's; each error names the
  /// key an operator sets (`tiered.promotionHits`, `shared.callTimeout`, ...).
  public func validate() throws(ConfigurationError) {
    if case .onHit(let count, let window) = promotion {
      try ConfigurationError.checkInteger(count, in: Self.promotionHitsRange, setting: "tiered.promotionHits")
      try ConfigurationError.checkDuration(window, in: Self.promotionWindowRange, setting: "tiered.promotionWindow")
    }
    try ConfigurationError.checkInteger(
      promotionTrackedKeys, in: Self.promotionTrackedKeysRange, setting: "tiered.promotionTrackedKeys")
    if let memoryMaxObjectSize, memoryMaxObjectSize < 1 {
      throw ConfigurationError(
        setting: "tiered.memoryMaxObjectSize", value: "\(memoryMaxObjectSize)", allowed: "at least 1 byte")
    }
    try shared.validate()
  }
}
