import NIOCore
import Synchronization

/// Stops calling a shared tier that keeps failing, so that a dead or partitioned tier
/// costs a branch per request instead of a timeout per request.
///
/// Closed: calls pass; `failureThreshold` failures in a row open it. Open: calls are
/// refused until `openDuration` has passed. Half-open: one probe call passes; its
/// success closes the breaker, its failure opens it again.
public final class CircuitBreaker: Sendable {
  public enum State: String, Sendable, Hashable {
    case closed
    case open
    case halfOpen = "half-open"
  }

  public struct Configuration: Sendable, Hashable {
    public var failureThreshold: Int
    public var openDuration: Duration

    public init(failureThreshold: Int = 5, openDuration: Duration = .seconds(5)) {
      self.failureThreshold = max(1, failureThreshold)
      self.openDuration = openDuration
    }
  }

  private enum Phase {
    case closed(failures: Int)
    case open(until: NIODeadline)
    case halfOpen(probing: Bool)
  }

  public let configuration: Configuration
  private let phase = Mutex(Phase.closed(failures: 0))
  private let opened = Atomic<Int>(0)

  public init(configuration: Configuration = Configuration()) {
    self.configuration = configuration
  }

  /// How many times the breaker opened since it was made.
  public var openings: Int { opened.load(ordering: .relaxed) }

  public var state: State {
    phase.withLock { phase in
      switch phase {
      case .closed: .closed
      case .open(let until): NIODeadline.now() >= until ? .halfOpen : .open
      case .halfOpen: .halfOpen
      }
    }
  }

  /// Whether a call may go out now; in half-open, only the first caller gets a yes.
  public func allowCall() -> Bool {
    phase.withLock { phase in
      switch phase {
      case .closed:
        return true
      case .open(let until):
        guard NIODeadline.now() >= until else { return false }
        phase = .halfOpen(probing: true)
        return true
      case .halfOpen(let probing):
        if probing { return false }
        phase = .halfOpen(probing: true)
        return true
      }
    }
  }

  public func recordSuccess() {
    phase.withLock { $0 = .closed(failures: 0) }
  }

  /// A call that ended without a verdict on the tier (the caller was cancelled):
  /// in half-open, lets the next caller probe instead.
  public func recordInconclusive() {
    phase.withLock { phase in
      if case .halfOpen = phase { phase = .halfOpen(probing: false) }
    }
  }

  public func recordFailure() {
    let openedNow = phase.withLock { phase -> Bool in
      switch phase {
      case .closed(let failures):
        if failures + 1 >= configuration.failureThreshold {
          phase = .open(until: deadline())
          return true
        }
        phase = .closed(failures: failures + 1)
        return false
      case .halfOpen:
        phase = .open(until: deadline())
        return true
      case .open:
        return false
      }
    }
    if openedNow { opened.add(1, ordering: .relaxed) }
  }

  private func deadline() -> NIODeadline {
    let (seconds, attoseconds) = configuration.openDuration.components
    return NIODeadline.now() + .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
  }
}
