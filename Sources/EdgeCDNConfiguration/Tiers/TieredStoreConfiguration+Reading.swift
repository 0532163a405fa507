public import EdgeCDNStore

extension TieredStoreConfiguration {
  /// How `tiered.promotion` is spelt; `PromotionRule` carries its parameters, which come from
  /// `tiered.promotionHits` and `tiered.promotionWindow`.
  enum PromotionSetting: String, CaseIterable {
    case always
    case never
    case onHit = "on-hit"
  }

  /// Reads `promotion`, `promotionHits`, `promotionWindow`, `promotionTrackedKeys`,
  /// `fillFromShared` and `writeBehind` from a reader scoped to `tiered`, and the shared tier
  /// client's settings from one scoped to `shared`. Missing settings keep the defaults of
  /// `TieredStoreConfiguration()`; ranges are checked by `validate()`, which names the same keys.
  ///
  /// `memoryMaxObjectSize` is not a setting: it is `memory.maxObjectSize`, which the executable
  /// passes on when it builds the store.
  public init(reading settings: SettingsReader, shared: SettingsReader) throws(ConfigurationError) {
    let defaults = TieredStoreConfiguration()
    var defaultHits = PromotionRule.defaultHitCount
    var defaultWindow = PromotionRule.defaultWindow
    let defaultKind: PromotionSetting
    switch defaults.promotion {
    case .always: defaultKind = .always
    case .never: defaultKind = .never
    case .onHit(let count, let window):
      defaultKind = .onHit
      defaultHits = count
      defaultWindow = window
    }
    // Every key is read whatever the rule, so none of them is taken for a typo.
    let kind = try settings.choice("promotion", default: defaultKind)
    let hits = try settings.int("promotionHits", default: defaultHits)
    let window = try settings.duration("promotionWindow", default: DurationSetting(defaultWindow)).duration
    let promotion: PromotionRule
    switch kind {
    case .always: promotion = .always
    case .never: promotion = .never
    case .onHit: promotion = .onHit(count: hits, within: window)
    }
    self.init(
      promotion: promotion,
      promotionTrackedKeys: try settings.int("promotionTrackedKeys", default: defaults.promotionTrackedKeys),
      memoryMaxObjectSize: nil,
      fillFromShared: try settings.bool("fillFromShared", default: defaults.fillFromShared),
      writeBehind: try settings.bool("writeBehind", default: defaults.writeBehind),
      shared: try SharedTierConfiguration(reading: shared))
  }
}
