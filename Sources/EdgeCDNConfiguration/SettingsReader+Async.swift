public import EdgeCDNStore
import NIOPosix

extension SettingsReader {
  /// `init(sources:)` with the file read on NIO's thread pool, for callers already running on the
  /// cooperative pool or an event loop, which a blocking read would stall.
  public static func reading(_ sources: ConfigurationSources) async throws(ConfigurationError) -> SettingsReader {
    try await onIOThread { () throws(ConfigurationError) in try SettingsReader(sources: sources) }
  }

  static func onIOThread<T: Sendable>(
    _ work: @escaping @Sendable () throws(ConfigurationError) -> T
  ) async throws(ConfigurationError) -> T {
    let result: Result<T, ConfigurationError>
    do {
      result = try await NIOThreadPool.singleton.runIfActive { () -> Result<T, ConfigurationError> in
        do throws(ConfigurationError) { return .success(try work()) } catch { return .failure(error) }
      }
    } catch {
      throw ConfigurationError(
        setting: SettingsFile.setting, value: "(not read)", allowed: "a running I/O thread pool (\(error))")
    }
    return try result.get()
  }
}

extension StoreConfiguration {
  /// `load(from:)` with the file read on NIO's thread pool; use it from async code.
  public static func load(from sources: ConfigurationSources) async throws(ConfigurationError) -> StoreConfiguration {
    try await SettingsReader.onIOThread { () throws(ConfigurationError) in try load(from: sources) }
  }
}
