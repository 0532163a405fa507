public import EdgeCDNStore
public import NIOCore
import Synchronization

/// pingora's cache lock: at most one origin fetch per key at a time.
///
/// The first request for a missing key becomes the leader and fetches; later ones wait
/// (bounded by a timeout) for the leader to publish what it learned. The lock is
/// released as soon as the response head is known, not when the body ends: waiters
/// told `.stored` read the body while it streams in (`lookupStreamingWrite`), and
/// requests arriving later find the write in progress through plain `lookup`.
public final class CacheLock: Sendable {
  /// What the leader learned.
  public enum Outcome: Sendable {
    /// Stored under `key` (the variant key) by the write `tag`; read it from the store.
    case stored(key: CacheKey, tag: StreamingWriteTag?, meta: CacheMeta)
    /// A revalidation refreshed the stored entry in place (304): look it up again.
    case refreshed
    /// Not storable, or the fetch failed: each waiter fetches for itself.
    case notStored
  }

  public enum Role: Sendable {
    case leader(Ticket)
    case waiter(Ticket)
  }

  /// One fetch in flight, shared by its leader and waiters.
  public final class Ticket: Sendable {
    private struct State {
      var outcome: Outcome?
      var waiters: [UInt64: CheckedContinuation<Outcome?, Never>] = [:]
      var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())
    fileprivate let hash: CacheHash

    fileprivate init(hash: CacheHash) {
      self.hash = hash
    }

    fileprivate func publish(_ outcome: Outcome) {
      let waiters = state.withLock { s -> [CheckedContinuation<Outcome?, Never>] in
        guard s.outcome == nil else { return [] }
        s.outcome = outcome
        defer { s.waiters = [:] }
        return Array(s.waiters.values)
      }
      for waiter in waiters { waiter.resume(returning: outcome) }
    }

    /// The leader's outcome, or nil when `timeout` passes first.
    public func wait(timeout: TimeAmount, on eventLoop: any EventLoop) async -> Outcome? {
      await withCheckedContinuation { (continuation: CheckedContinuation<Outcome?, Never>) in
        let registered = state.withLock { s -> (Outcome?, UInt64?) in
          if let outcome = s.outcome { return (outcome, nil) }
          let id = s.nextWaiter
          s.nextWaiter += 1
          s.waiters[id] = continuation
          return (nil, id)
        }
        guard let id = registered.1 else {
          continuation.resume(returning: registered.0)
          return
        }
        eventLoop.scheduleTask(in: timeout) { [self] in
          let expired = state.withLock { $0.waiters.removeValue(forKey: id) }
          expired?.resume(returning: nil)
        }
      }
    }
  }

  private let tickets = Mutex<[CacheHash: Ticket]>([:])

  public init() {}

  /// Leader if nobody is fetching `key`, else a waiter on the fetch in flight.
  public func acquire(_ key: CacheKey) -> Role {
    let hash = key.combinedHash
    return tickets.withLock { tickets in
      if let ticket = tickets[hash] { return .waiter(ticket) }
      let ticket = Ticket(hash: hash)
      tickets[hash] = ticket
      return .leader(ticket)
    }
  }

  /// The leader publishes and releases the key; later requests go to the store.
  public func release(_ ticket: Ticket, outcome: Outcome) {
    tickets.withLock { tickets in
      if tickets[ticket.hash] === ticket { tickets[ticket.hash] = nil }
    }
    ticket.publish(outcome)
  }

  /// Fetches in flight now (for tests and readiness).
  public var inFlight: Int { tickets.withLock { $0.count } }
}
