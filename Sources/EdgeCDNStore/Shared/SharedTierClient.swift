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

  init(tier: any SharedTier, configuration: SharedTierConfiguration, metrics: TieredMetrics) {
    self.tier = tier
    self.configuration = configuration
    self.breaker = CircuitBreaker(configuration: configuration.breaker)
    self.metrics = metrics
  }

  public var name: String { tier.name }

  /// One guarded call: refused at once while the breaker is open, limited in time,
  /// its outcome fed to the breaker.
  func call<T: Sendable>(
    _ operation: String, timeout: Duration? = nil, _ body: @escaping @Sendable () async throws(CacheError) -> T
  ) async throws(CacheError) -> T {
    guard breaker.allowCall() else {
      metrics.sharedRejected.increment()
      throw .unavailable(tier: tier.name, reason: "circuit open, \(operation) not attempted")
    }
    do {
      let value = try await withDeadline(
        timeout ?? configuration.callTimeout, tier: tier.name, operation: operation, body)
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

  func fetchMeta(_ key: CacheKey) async throws(CacheError) -> SharedObjectHead? {
    let tier = self.tier
    return try await call("fetch meta") { () async throws(CacheError) -> SharedObjectHead? in
      try await tier.fetchMeta(key)
    }
  }

  func streamBody(_ key: CacheKey, head: SharedObjectHead) async throws(CacheError) -> (any SharedBodyStream)? {
    let tier = self.tier
    let stream = try await call("open body") { () async throws(CacheError) -> SharedStreamBox? in
      try await tier.streamBody(key, head: head).map(SharedStreamBox.init)
    }
    return stream.map { TimedBodyStream(base: $0.stream, client: self) }
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
      var report = try await withDeadline(configuration.callTimeout, tier: tier.name, operation: "health") {
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

/// Carries an existential through a generic `Sendable` result.
struct SharedStreamBox: Sendable {
  var stream: any SharedBodyStream
}

/// A shared body whose every chunk is limited in time and counted by the breaker.
final class TimedBodyStream: SharedBodyStream {
  let base: any SharedBodyStream
  let client: SharedTierClient

  init(base: any SharedBodyStream, client: SharedTierClient) {
    self.base = base
    self.client = client
  }

  func next() async throws(CacheError) -> ByteBuffer? {
    let base = self.base
    do {
      let chunk = try await withDeadline(client.configuration.chunkTimeout, tier: client.name, operation: "read body") {
        () async throws(CacheError) -> ByteBuffer? in try await base.next()
      }
      return chunk
    } catch {
      if case .cancelled = error { throw error }
      client.breaker.recordFailure()
      client.metrics.sharedFailures.increment()
      throw error
    }
  }

  func cancel() async {
    let base = self.base
    _ = try? await withDeadline(client.configuration.callTimeout, tier: client.name, operation: "cancel body") {
      () async throws(CacheError) in await base.cancel()
    }
  }
}
