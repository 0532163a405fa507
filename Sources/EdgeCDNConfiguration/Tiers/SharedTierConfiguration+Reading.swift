public import EdgeCDNStore

extension SharedTierConfiguration {
  /// Reads the shared tier client's time limits, circuit breaker (`breaker.failureThreshold`,
  /// `breaker.openDuration`), queue bounds and retry bounds from a reader scoped to `shared`.
  /// Values are stored as read, without the clamping of `init`, so that `validate()` reports
  /// a 0 instead of quietly raising it to 1.
  public init(reading settings: SettingsReader) throws(ConfigurationError) {
    var configuration = SharedTierConfiguration()
    func duration(_ key: String, _ value: Duration) throws(ConfigurationError) -> Duration {
      try settings.duration(key, default: DurationSetting(value)).duration
    }
    configuration.callTimeout = try duration("callTimeout", configuration.callTimeout)
    configuration.chunkTimeout = try duration("chunkTimeout", configuration.chunkTimeout)
    configuration.uploadTimeout = try duration("uploadTimeout", configuration.uploadTimeout)
    configuration.breaker.failureThreshold = try settings.int(
      "breaker.failureThreshold", default: configuration.breaker.failureThreshold)
    configuration.breaker.openDuration = try duration("breaker.openDuration", configuration.breaker.openDuration)
    configuration.writeBehindCapacity = try settings.int(
      "writeBehindCapacity", default: configuration.writeBehindCapacity)
    configuration.retryCapacity = try settings.int("retryCapacity", default: configuration.retryCapacity)
    configuration.maxAttempts = try settings.int("maxAttempts", default: configuration.maxAttempts)
    configuration.retryBackoff = try duration("retryBackoff", configuration.retryBackoff)
    self = configuration
  }
}
