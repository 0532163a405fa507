import Synchronization

/// What a `SettingsReader` and its scoped children have looked up, shared between them: the keys
/// (so settings nobody reads can be reported as typos), where each value came from (so a range
/// error found later by `validate()` can still name its source) and the effective values.
final class ReadRecord: Sendable {
  private struct State {
    var keys: Set<String> = []
    var environmentNames: Set<String> = []
    var optionNames: Set<String> = []
    var givenOptions: [String] = []
    var sources: [String: String] = [:]
    var resolved: [String: ResolvedSetting] = [:]
  }

  private let state = Mutex(State())

  func noteRead(key: String) {
    state.withLock { _ = $0.keys.insert(key) }
  }

  func noteEnvironmentName(_ name: String) {
    state.withLock { _ = $0.environmentNames.insert(name) }
  }

  func noteOptionName(_ name: String) {
    state.withLock { _ = $0.optionNames.insert(name) }
  }

  /// The `--options` the command line holds, in order, for the typo check.
  func noteGivenOptions(_ options: [String]) {
    state.withLock { $0.givenOptions = options }
  }

  func noteSource(_ source: String, of key: String) {
    state.withLock { $0.sources[key] = source }
  }

  func noteResolved(_ setting: ResolvedSetting) {
    state.withLock { $0.resolved[setting.key] = setting }
  }

  var keys: Set<String> { state.withLock { $0.keys } }
  var environmentNames: Set<String> { state.withLock { $0.environmentNames } }
  var optionNames: Set<String> { state.withLock { $0.optionNames } }
  var givenOptions: [String] { state.withLock { $0.givenOptions } }
  var resolved: [ResolvedSetting] { state.withLock { $0.resolved.values.sorted { $0.key < $1.key } } }

  func source(of key: String) -> String? {
    state.withLock { $0.sources[key] }
  }
}
