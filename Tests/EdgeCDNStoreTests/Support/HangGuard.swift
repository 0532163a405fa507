import Testing

/// A bound on each test of a suite that works even when the test awaits a continuation
/// nobody resumes.
///
/// Why not `.timeLimit`: Swift Testing cancels the test at its limit and then waits for
/// it, and a test stuck on a continuation that ignores cancellation never ends, so the
/// whole run hangs with no test named. A non-escaping test body cannot be abandoned
/// safely, so this guard names the test (an issue, printed at once) when it overruns,
/// and if it has still not ended after as long again, stops the process with a message
/// naming it: a failed run instead of a silent hang.
struct HangGuard: TestTrait, SuiteTrait, TestScoping {
  var limit: Duration
  var isRecursive: Bool { true }

  @concurrent func provideScope(
    for test: Test, testCase: Test.Case?, performing function: @concurrent @Sendable () async throws -> Void
  ) async throws {
    guard testCase != nil else { return try await function() }
    let name = "\"\(test.displayName ?? test.name)\" (\(test.sourceLocation.fileID):\(test.sourceLocation.line))"
    let limit = self.limit
    let location = test.sourceLocation
    // Unstructured, so it inherits the task locals that attribute the issue to the test.
    let watchdog = Task {
      do { try await Task.sleep(for: limit) } catch { return }
      Issue.record(
        "\(name) did not finish within \(limit): it hangs, or the machine stalled it that long",
        sourceLocation: location)
      do { try await Task.sleep(for: limit) } catch { return }
      fatalError("\(name) still running after \(limit * 2): stopping the run instead of hanging")
    }
    defer { watchdog.cancel() }
    try await function()
  }
}

extension Trait where Self == HangGuard {
  /// Names a test that runs longer than `limit`, and ends the run if it is still running
  /// after twice `limit` (see HangGuard). Generous: beside the whole suite on a loaded
  /// 2-core machine, some debug-build tests take over 3 minutes without hanging.
  static func hangGuard(_ limit: Duration = .seconds(300)) -> Self { HangGuard(limit: limit) }
}
