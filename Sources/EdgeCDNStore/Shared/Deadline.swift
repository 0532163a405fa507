import Synchronization

/// Runs `body` with a time limit that holds even when `body` ignores cancellation.
///
/// Why not a task group racing a sleep: a group waits for all its children before it
/// returns, so a call stuck in a partitioned network (which may not notice
/// cancellation) would stall the caller anyway. Here the work runs in its own task;
/// the caller resumes at the first of: result, deadline, or its own cancellation,
/// and the loser is cancelled and left to end on its own.
func withDeadline<T: Sendable>(
  _ timeout: Duration, tier: String, operation: String,
  _ body: @escaping @Sendable () async throws(CacheError) -> T
) async throws(CacheError) -> T {
  let once = OneShot<T>()
  let result = await withTaskCancellationHandler {
    await withCheckedContinuation { continuation in
      once.install(continuation)
      let timer = Task {
        try? await Task.sleep(for: timeout)
        guard !Task.isCancelled else { return }
        once.offer(.failure(.unavailable(tier: tier, reason: "\(operation) timed out after \(timeout)")))
      }
      let work = Task {
        let outcome: Result<T, CacheError>
        do throws(CacheError) { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        once.offer(outcome)
        timer.cancel()
      }
      once.onTimeout { work.cancel() }
    }
  } onCancel: {
    once.offer(.failure(.cancelled(key: nil)))
  }
  return try result.get()
}

/// The meeting point of the racers: the first offer resumes the caller, later ones are ignored.
final class OneShot<T: Sendable>: Sendable {
  private struct State {
    var continuation: CheckedContinuation<Result<T, CacheError>, Never>?
    var result: Result<T, CacheError>?
    var delivered = false
    var loserCancel: (@Sendable () -> Void)?
  }

  private let state = Mutex(State())

  func install(_ continuation: CheckedContinuation<Result<T, CacheError>, Never>) {
    let ready = state.withLock { state -> Result<T, CacheError>? in
      if let result = state.result, !state.delivered {
        state.delivered = true
        return result
      }
      state.continuation = continuation
      return nil
    }
    if let ready { continuation.resume(returning: ready) }
  }

  /// Registers what cancels the work when something else (deadline, cancellation) wins.
  func onTimeout(_ cancel: @escaping @Sendable () -> Void) {
    let runNow = state.withLock { state -> Bool in
      if state.result != nil { return true }
      state.loserCancel = cancel
      return false
    }
    if runNow { cancel() }
  }

  func offer(_ result: Result<T, CacheError>) {
    let (continuation, cancel) = state.withLock {
      state -> (CheckedContinuation<Result<T, CacheError>, Never>?, (@Sendable () -> Void)?) in
      guard state.result == nil else { return (nil, nil) }
      state.result = result
      let cancel = state.loserCancel
      state.loserCancel = nil
      guard let continuation = state.continuation else { return (nil, cancel) }
      state.continuation = nil
      state.delivered = true
      return (continuation, cancel)
    }
    continuation?.resume(returning: result)
    // Cancelling the work after its own success is harmless: it has ended.
    cancel?()
  }
}
