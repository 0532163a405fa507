extension SharedTierConfiguration {
  /// A call to a shared tier sits on a client's miss path, so its limit stays well under a
  /// second by default and at most a minute.
  public static let callTimeoutRange = Duration.milliseconds(1)...Duration.seconds(60)
  public static let chunkTimeoutRange = Duration.milliseconds(1)...Duration.seconds(600)
  public static let uploadTimeoutRange = Duration.milliseconds(1)...Duration.seconds(3_600)
  public static let failureThresholdRange = 1...10_000
  public static let openDurationRange = Duration.milliseconds(1)...Duration.seconds(3_600)
  /// Queues hold keys and small jobs; a million is far beyond any need and still bounded.
  public static let queueCapacityRange = 1...(1 << 20)
  public static let maxAttemptsRange = 1...100
  public static let retryBackoffRange = Duration.zero...Duration.seconds(60)

  /// Checks every setting of the shared tier's client; errors name the `shared.*` keys.
  public func validate() throws(ConfigurationError) {
    try ConfigurationError.checkDuration(callTimeout, in: Self.callTimeoutRange, setting: "shared.callTimeout")
    try ConfigurationError.checkDuration(chunkTimeout, in: Self.chunkTimeoutRange, setting: "shared.chunkTimeout")
    try ConfigurationError.checkDuration(uploadTimeout, in: Self.uploadTimeoutRange, setting: "shared.uploadTimeout")
    try ConfigurationError.checkInteger(
      breaker.failureThreshold, in: Self.failureThresholdRange, setting: "shared.breaker.failureThreshold")
    try ConfigurationError.checkDuration(
      breaker.openDuration, in: Self.openDurationRange, setting: "shared.breaker.openDuration")
    try ConfigurationError.checkInteger(
      writeBehindCapacity, in: Self.queueCapacityRange, setting: "shared.writeBehindCapacity")
    try ConfigurationError.checkInteger(retryCapacity, in: Self.queueCapacityRange, setting: "shared.retryCapacity")
    try ConfigurationError.checkInteger(maxAttempts, in: Self.maxAttemptsRange, setting: "shared.maxAttempts")
    try ConfigurationError.checkDuration(retryBackoff, in: Self.retryBackoffRange, setting: "shared.retryBackoff")
  }
}
