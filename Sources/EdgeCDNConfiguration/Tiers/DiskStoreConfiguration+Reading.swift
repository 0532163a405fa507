public import EdgeCDNStore

extension DiskStoreConfiguration {
  /// Reads the disk tier from a reader scoped to `disk`: nil when `enabled` is false.
  /// Missing settings keep the defaults of `DiskStoreConfiguration(path:)`, except that an
  /// unset `maxObjectSize` is lowered to what a small `size` allows, so that
  /// `--disk-size 64MiB` alone is a valid configuration; ranges are checked by
  /// `validate()`, which names the same keys. Every key is read even when the tier
  /// is disabled, so a file that keeps its disk settings while `enabled` is false is not
  /// refused for unknown keys.
  public static func reading(_ settings: SettingsReader) throws(ConfigurationError) -> DiskStoreConfiguration? {
    let enabled = try settings.bool("enabled", default: true)
    let defaults = DiskStoreConfiguration(path: DiskStoreConfiguration.defaultPath)
    let flush = try settings.duration(
      "flushInterval", default: .milliseconds(Int64(defaults.flushIntervalMilliseconds)))
    var configuration = DiskStoreConfiguration(
      path: try settings.string("path", default: defaults.path),
      size: try settings.size("size", default: ByteSize(bytes: defaults.size)).bytes,
      regionSize: try settings.size("regionSize", default: ByteSize(bytes: defaults.regionSize)).bytes,
      fragmentSize: try settings.size("fragmentSize", default: ByteSize(bytes: defaults.fragmentSize)).bytes,
      flushIntervalMilliseconds: Int(clamping: flush.nanoseconds / 1_000_000),
      reinsertion: try settings.choice("reinsertion", default: defaults.reinsertion))
    let maxObjectDefault = min(defaults.maxObjectSize, max(configuration.maxObjectSizeLimit, 1))
    configuration.maxObjectSize = try settings.size("maxObjectSize", default: ByteSize(bytes: maxObjectDefault)).bytes
    return enabled ? configuration : nil
  }
}
