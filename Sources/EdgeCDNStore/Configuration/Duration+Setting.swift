extension Duration {
  /// Whole nanoseconds, saturating; what range checks and messages compare and print.
  var settingNanoseconds: Int64 {
    let (seconds, attoseconds) = components
    let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    guard !overflow else { return seconds < 0 ? .min : .max }
    let (total, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
    guard !overflow2 else { return seconds < 0 ? .min : .max }
    return total
  }

  /// The value as an operator would write it ("250ms", "5s"), so a range error quotes it in the
  /// same units the docs and the allowed range use rather than Swift's "0.25 seconds".
  var settingDescription: String {
    let nanoseconds = settingNanoseconds
    guard nanoseconds >= 0 else { return "-" + DurationSetting(nanoseconds: -max(nanoseconds, -Int64.max)).description }
    return DurationSetting(nanoseconds: nanoseconds).description
  }
}

extension ConfigurationError {
  /// A duration outside `range`, named by `setting`, with the range in the operator's units.
  static func checkDuration(
    _ value: Duration, in range: ClosedRange<Duration>, setting: String
  ) throws(ConfigurationError) {
    guard range.contains(value) else {
      throw ConfigurationError(
        setting: setting, value: value.settingDescription,
        allowed: "\(range.lowerBound.settingDescription)...\(range.upperBound.settingDescription)")
    }
  }

  /// An integer outside `range`, named by `setting`.
  static func checkInteger(_ value: Int, in range: ClosedRange<Int>, setting: String) throws(ConfigurationError) {
    guard range.contains(value) else {
      throw ConfigurationError(
        setting: setting, value: "\(value)", allowed: "\(range.lowerBound)...\(range.upperBound)")
    }
  }
}

extension DurationSetting {
  /// A `Duration` as a setting, for defaults kept as `Duration` in a tier's configuration;
  /// negative durations (never a default) become zero.
  public init(_ duration: Duration) {
    self.init(nanoseconds: max(0, duration.settingNanoseconds))
  }
}
