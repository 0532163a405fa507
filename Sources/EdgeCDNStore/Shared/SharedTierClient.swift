import CoreMetrics
import NIOCore

/// Settings of the shared tier's client: time limits, breaker, queues, retries.
public struct SharedTierConfiguration: Sendable, Hashable {
  /// Limit of one call (fetch meta, open a body, delete, update meta).
  public var callTimeout: Duration
  /// Limit of one body chunk, so a stalled stream fails instead of hanging a reader.
  public var chunkTimeout: Duration
  /// Limit of one whole upload by the write-behind worker.
  public var uploadTimeout: Duration
  public var breaker: CircuitBreaker.Configuration
  /// Uploads waiting at most; more are dropped and counted.
  public var writeBehindCapacity: Int
  /// Failed purges and meta updates waiting for a retry at most.
  public var retryCapacity: Int
  /// Attempts of a purge or meta update in all, the first included.
  public var maxAttempts: Int
  /// Pause before a retry, doubled at each attempt.
  public var retryBackoff: Duration

  public init(
    callTimeout: Duration = .milliseconds(250), chunkTimeout: Duration = .seconds(1),
    uploadTimeout: Duration = .seconds(30),
    breaker: CircuitBreaker.Configuration = .init(), writeBehindCapacity: Int = 1024, retryCapacity: Int = 1024,
    maxAttempts: Int = 4, retryBackoff: Duration = .milliseconds(100)
  ) {
    self.callTimeout = callTimeout
    self.chunkTimeout = chunkTimeout
    self.uploadTimeout = uploadTimeout
    self.breaker = breaker
    self.writeBehindCapacity = writeBehindCapacity
    self.retryCapacity = retryCapacity
    self.maxAttempts = max(1, maxAttempts)
    self.retryBackoff = retryBackoff
  }
}

/// A SharedTier behind a time limit per call and a circuit breaker: what the tiered
/// store talks to, so that no call into a slow, failing or partitioned shared tier
/// can stall or fail a client for longer than `callTimeout`.
public final class SharedTierClient: Sendable {
  public let tier: any SharedTier
  public let configuration: SharedTierConfiguration
  public let breaker: CircuitBreaker
  let metrics: TieredMetrics
  /// Where the time limits of its calls and body reads wait: the process's one watch,
  /// or (tests) a watch of its own, so that what it leaves pending can be counted.
  let deadlines: DeadlineWatch

  init(
    tier: any SharedTier, configuration: SharedTierConfiguration, metrics: TieredMetrics,
    deadlines: DeadlineWatch = .shared
  ) {
    self.tier = tier
    self.configuration = configuration
    self.breaker = CircuitBreaker(configuration: configuration.breaker)
    self.metrics = metrics
    self.deadlines = deadlines
  }

  public var name: String { tier.name }

  /// One guarded call: refused at once while the breaker is open, limited in time,
  /// its outcome fed to the breaker.
  ///
  /// `then` runs in the call's task after it ended (see `withDeadline`).
  func call<T: Sendable>(
    _ operation: String, timeout: Duration? = nil, then: (@Sendable (_ delivered: Bool) async -> Void)? = nil,
    _ body: @escaping @Sendable () async throws(CacheError) -> T
  ) async throws(CacheError) -> T {
    guard breaker.allowCall() else {
      metrics.sharedRejected.increment()
      throw .unavailable(tier: tier.name, reason: "circuit open, \(operation) not attempted")
    }
    do {
      let value = try await withDeadline(
        timeout ?? configuration.callTimeout, tier: tier.name, operation: operation, watch: deadlines, then: then,
        body)
      breaker.recordSuccess()
      return value
    } catch {
      if case .cancelled = error {
        breaker.recordInconclusive()
        throw error
      }
      breaker.recordFailure()
      metrics.sharedFailures.increment()
      throw error
    }
  }

  /// Fetches the meta and opens the body of `key` as one call: one deadline and one
  /// task, which then goes on reading the body one chunk ahead of the reader (see
  /// `TimedBodyStream`). Nil when the tier has no such object (or it was replaced
  /// between the two).
  func open(_ key: CacheKey) async throws(CacheError) -> (head: SharedObjectHead, body: TimedBodyStream)? {
    let tier = self.tier
    let stream = TimedBodyStream(client: self)
    let head = try await call(
      "fetch meta and open body", then: { delivered in await stream.pump(delivered: delivered) }
    ) { () async throws(CacheError) -> SharedObjectHead? in
      guard let head = try await tier.fetchMeta(key), let body = try await tier.streamBody(key, head: head) else {
        return nil
      }
      stream.attach(body)
      return head
    }
    guard let head else { return nil }
    return (head, stream)
  }

  func store(_ key: CacheKey, meta: CacheMeta, body: any SharedBodyStream) async throws(CacheError) {
    let tier = self.tier
    try await call("store", timeout: configuration.uploadTimeout) { () async throws(CacheError) in
      try await tier.store(key, meta: meta, body: body)
    }
  }

  func delete(_ key: CompactCacheKey) async throws(CacheError) -> Bool {
    let tier = self.tier
    return try await call("delete") { () async throws(CacheError) -> Bool in try await tier.delete(key) }
  }

  func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    let tier = self.tier
    return try await call("update meta") { () async throws(CacheError) -> Bool in
      try await tier.updateMeta(key, meta: meta)
    }
  }

  /// The tier's own report, degraded while the breaker is not closed (the tier is
  /// then skipped, and the local tiers serve alone).
  func health() async -> TierHealth {
    let state = breaker.state
    guard state == .closed else {
      return TierHealth(tier: "shared", status: .degraded, reasons: ["\(tier.name): circuit \(state.rawValue)"])
    }
    let tier = self.tier
    do {
      var report = try await withDeadline(
        configuration.callTimeout, tier: tier.name, operation: "health", watch: deadlines
      ) {
        () async throws(CacheError) -> TierHealth in await tier.health()
      }
      report.tier = "shared"
      report.reasons.insert(tier.name, at: 0)
      return report
    } catch {
      return TierHealth(tier: "shared", status: .degraded, reasons: ["\(tier.name): \(error)"])
    }
  }
}
