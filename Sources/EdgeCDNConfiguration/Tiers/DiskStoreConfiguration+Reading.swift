public import EdgeCDNStore

extension DiskStoreConfiguration {
  /// Reads the disk tier from a reader scoped to `disk`: nil when `enabled` is false.
  /// Missing settings keep the defaults of `DiskStoreConfiguration(path:)`; ranges are
  /// checked by `validate()`, which names the same keys. Every key is read even when the tier
  /// is disabled, so a file that keeps its disk settings while `enabled` is false is not
  /// refused for unknown keys.
  public static func reading(_ settings: SettingsReader) throws(ConfigurationError) -> DiskStoreConfiguration? {
    let enabled = try settings.bool("enabled", default: true)
    let defaults = DiskStoreConfiguration(path: DiskStoreConfiguration.defaultPath)
    let flush = try settings.duration(
      "flushInterval", default: .milliseconds(Int64(defaults.flushIntervalMilliseconds)))
    let configuration = DiskStoreConfiguration(
      path: try settings.string("path", default: defaults.path),
      size: try settings.size("size", default: ByteSize(bytes: defaults.size)).bytes,
      regionSize: try settings.size("regionSize", default: ByteSize(bytes: defaults.regionSize)).bytes,
      fragmentSize: try settings.size("fragmentSize", default: ByteSize(bytes: defaults.fragmentSize)).bytes,
      maxObjectSize: try settings.size("maxObjectSize", default: ByteSize(bytes: defaults.maxObjectSize)).bytes,
      flushIntervalMilliseconds: Int(clamping: flush.nanoseconds / 1_000_000),
      reinsertion: try settings.choice("reinsertion", default: defaults.reinsertion),
      directWrites: try settings.bool("directWrites", default: defaults.directWrites))
    return enabled ? configuration : nil
  }
}
