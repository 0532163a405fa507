/// Settings of the tiered store itself; each tier keeps its own configuration.
public struct TieredStoreConfiguration: Sendable, Hashable {
  /// When a disk hit is copied into RAM.
  public var promotion: PromotionRule
  /// Keys whose disk hits are counted at most (for `PromotionRule.onHit`).
  public var promotionTrackedKeys: Int
  /// Objects larger than this skip RAM when another tier takes them; nil reads it
  /// from a `MemoryStore`'s configuration (and means no limit for other RAM tiers).
  public var memoryMaxObjectSize: Int?
  /// Whether objects read from the shared tier are copied into RAM and disk.
  public var fillFromShared: Bool
  /// Whether objects written locally are uploaded to the shared tier (write-behind).
  public var writeBehind: Bool
  public var shared: SharedTierConfiguration

  public init(
    promotion: PromotionRule = .default, promotionTrackedKeys: Int = 65_536,
    memoryMaxObjectSize: Int? = nil, fillFromShared: Bool = true, writeBehind: Bool = true,
    shared: SharedTierConfiguration = SharedTierConfiguration()
  ) {
    self.promotion = promotion
    self.promotionTrackedKeys = promotionTrackedKeys
    self.memoryMaxObjectSize = memoryMaxObjectSize
    self.fillFromShared = fillFromShared
    self.writeBehind = writeBehind
    self.shared = shared
  }
}
