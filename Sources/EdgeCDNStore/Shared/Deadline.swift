import NIOCore
import NIOPosix
import Synchronization

/// Runs `body` with a time limit that holds even when `body` ignores cancellation.
///
/// Why a task of its own for the work: a call stuck in a partitioned network (which
/// may not notice cancellation) must not hold the caller, and a task group would wait
/// for it. The caller resumes at the first of: result, deadline, or its own
/// cancellation; the loser is cancelled and left to end on its own.
///
/// Why `DeadlineWatch` and not a timer per call: a timer task (or a sleep) per call cost
/// a task, a timer and a thread hop each; the watch keeps the pending deadlines in one
/// table and arms one timer for the earliest, so a call that ends in time costs a
/// table insert and removal.
///
/// `then`, when given, runs in the work's task after the result was offered, told
/// whether the caller got it: a call can so go on working for its caller (reading a
/// body ahead) without a task of its own.
func withDeadline<T: Sendable>(
  _ timeout: Duration, tier: String, operation: String, watch deadlines: DeadlineWatch = .shared,
  then: (@Sendable (_ delivered: Bool) async -> Void)? = nil,
  _ body: @escaping @Sendable () async throws(CacheError) -> T
) async throws(CacheError) -> T {
  let once = OneShot<T>()
  let result = await withTaskCancellationHandler {
    await withCheckedContinuation { continuation in
      once.install(continuation)
      let watch = deadlines.add(after: timeout) {
        once.offer(.failure(.unavailable(tier: tier, reason: "\(operation) timed out after \(timeout)")))
      }
      let work = Task {
        let outcome: Result<T, CacheError>
        do throws(CacheError) { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        deadlines.remove(watch)
        let delivered = once.offer(outcome, fromWork: true)
        await then?(delivered)
      }
      once.onTimeout {
        deadlines.remove(watch)
        work.cancel()
      }
    }
  } onCancel: {
    once.offer(.failure(.cancelled(key: nil)))
  }
  return try result.get()
}

/// The pending deadlines of shared-tier calls and body reads, with one event-loop
/// timer armed for the earliest of them.
///
/// Why: a call that ends in time, the common case, then costs a table insert and a
/// removal under a lock held for a few instructions; a timer is armed only when a
/// deadline earlier than the armed one arrives, or when the armed one fires and others
/// are still pending (so under steady traffic about once per time limit, not per call).
final class DeadlineWatch: Sendable {
  /// One per process: deadlines of every shared tier share the timer.
  static let shared = DeadlineWatch(loop: MultiThreadedEventLoopGroup.singleton.next())

  struct Token: Sendable, Hashable {
    fileprivate let id: UInt64
  }

  private struct Entry {
    var deadline: NIODeadline
    var fire: @Sendable () -> Void
  }

  private struct State {
    var entries: [UInt64: Entry] = [:]
    var nextID: UInt64 = 0
    /// The earliest check scheduled on the loop, if any.
    var armed: NIODeadline?
  }

  private let state = Mutex(State())
  private let loop: any EventLoop

  init(loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
    self.loop = loop
  }

  /// Calls `fire` (on an event loop, so it must not block) once `timeout` has passed,
  /// unless the token is removed first.
  func add(after timeout: Duration, _ fire: @escaping @Sendable () -> Void) -> Token {
    let deadline = NIODeadline.now() + TimeAmount(timeout)
    let (id, arm) = state.withLock { state -> (UInt64, Bool) in
      state.nextID &+= 1
      state.entries[state.nextID] = Entry(deadline: deadline, fire: fire)
      let arm = state.armed.map { deadline < $0 } ?? true
      if arm { state.armed = deadline }
      return (state.nextID, arm)
    }
    if arm { schedule(at: deadline) }
    return Token(id: id)
  }

  /// Forgets a deadline whose call ended (removing one that fired or was removed is harmless).
  func remove(_ token: Token) {
    state.withLock { _ = $0.entries.removeValue(forKey: token.id) }
  }

  /// Deadlines pending now (for tests).
  var pendingCount: Int { state.withLock { $0.entries.count } }

  private func schedule(at deadline: NIODeadline) {
    _ = loop.scheduleTask(deadline: deadline) { self.check(armedAt: deadline) }
  }

  private func check(armedAt: NIODeadline) {
    let now = NIODeadline.now()
    let (expired, next) = state.withLock { state -> ([@Sendable () -> Void], NIODeadline?) in
      if state.armed == armedAt { state.armed = nil }
      var expiredIDs: [UInt64] = []
      var earliest: NIODeadline?
      for (id, entry) in state.entries {
        if entry.deadline <= now {
          expiredIDs.append(id)
        } else if earliest.map({ entry.deadline < $0 }) ?? true {
          earliest = entry.deadline
        }
      }
      let expired = expiredIDs.compactMap { state.entries.removeValue(forKey: $0)?.fire }
      guard let earliest, state.armed.map({ earliest < $0 }) ?? true else { return (expired, nil) }
      state.armed = earliest
      return (expired, earliest)
    }
    if let next { schedule(at: next) }
    for fire in expired { fire() }
  }
}
/// The meeting point of the racers: the first offer resumes the caller, later ones are ignored.
final class OneShot<T: Sendable>: Sendable {
  private struct State {
    var continuation: CheckedContinuation<Result<T, CacheError>, Never>?
    var result: Result<T, CacheError>?
    var delivered = false
    var loserCancel: (@Sendable () -> Void)?
    /// The work's own result won: nothing cancels the work then.
    var workWon = false
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
      if state.result != nil { return !state.workWon }
      state.loserCancel = cancel
      return false
    }
    if runNow { cancel() }
  }

  /// Offers a result; true when it is the one the caller gets. An offer from the work
  /// itself does not cancel the work (it may go on, see `withDeadline`'s `then`).
  @discardableResult
  func offer(_ result: Result<T, CacheError>, fromWork: Bool = false) -> Bool {
    let (accepted, continuation, cancel) = state.withLock {
      state -> (Bool, CheckedContinuation<Result<T, CacheError>, Never>?, (@Sendable () -> Void)?) in
      guard state.result == nil else { return (false, nil, nil) }
      state.result = result
      state.workWon = fromWork
      let cancel = fromWork ? nil : state.loserCancel
      state.loserCancel = nil
      guard let continuation = state.continuation else { return (true, nil, cancel) }
      state.continuation = nil
      state.delivered = true
      return (true, continuation, cancel)
    }
    continuation?.resume(returning: result)
    cancel?()
    return accepted
  }
}
