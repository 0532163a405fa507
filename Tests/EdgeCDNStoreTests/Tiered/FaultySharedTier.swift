import EdgeCDNStore
import NIOCore
import Synchronization

/// An in-process shared tier that can be made slow, failing or partitioned, and can
/// hold a body back after its first chunk (to see fills stream).
final class FaultySharedTier: SharedTier {
  enum Mode: Sendable {
    case healthy
    /// Every call waits this long first (and honours cancellation).
    case slow(Duration)
    /// Every call fails at once.
    case failing
    /// Every call hangs, ignoring cancellation, for `hang` (a network partition).
    case partitioned(hang: Duration)
  }

  let base = InMemorySharedTier(name: "faulty")
  let mode = Mutex(Mode.healthy)
  let calls = Atomic<Int>(0)
  /// When set, body streams stop after the first chunk until `releaseBodies()`.
  let holdBodies = Mutex<AsyncStream<Void>?>(nil)
  let release = Mutex<AsyncStream<Void>.Continuation?>(nil)

  var name: String { "faulty" }

  func set(_ newMode: Mode) { mode.withLock { $0 = newMode } }

  func holdBodiesAfterFirstChunk() {
    let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
    holdBodies.withLock { $0 = stream }
    release.withLock { $0 = continuation }
  }

  func releaseBodies() { release.withLock { $0?.finish() } }

  private func enter(_ operation: String) async throws(CacheError) {
    calls.add(1, ordering: .relaxed)
    switch mode.withLock({ $0 }) {
    case .healthy: return
    case .slow(let delay):
      do { try await Task.sleep(for: delay) } catch { throw .cancelled(key: nil) }
    case .failing:
      throw .unavailable(tier: name, reason: "\(operation) refused (injected)")
    case .partitioned(let hang):
      let until = ContinuousClock.now + hang
      while ContinuousClock.now < until {
        // Deliberately deaf to cancellation, as a blocked socket read is.
        try? await Task.sleep(for: .milliseconds(10))
      }
      throw .unavailable(tier: name, reason: "\(operation) partitioned (injected)")
    }
  }

  func fetchMeta(_ key: CacheKey) async throws(CacheError) -> SharedObjectHead? {
    try await enter("fetch meta")
    return try await base.fetchMeta(key)
  }

  func streamBody(_ key: CacheKey, head: SharedObjectHead) async throws(CacheError) -> (any SharedBodyStream)? {
    try await enter("stream body")
    guard let stream = try await base.streamBody(key, head: head) else { return nil }
    guard let gate = holdBodies.withLock({ $0 }) else { return stream }
    return HeldStream(base: stream, gate: gate)
  }

  func store(_ key: CacheKey, meta: CacheMeta, body: any SharedBodyStream) async throws(CacheError) {
    try await enter("store")
    try await base.store(key, meta: meta, body: body)
  }

  func delete(_ key: CompactCacheKey) async throws(CacheError) -> Bool {
    try await enter("delete")
    return try await base.delete(key)
  }

  func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    try await enter("update meta")
    return try await base.updateMeta(key, meta: meta)
  }

  func health() async -> TierHealth { TierHealth(tier: name, status: .ok) }
}

/// Passes the first chunk, then waits for the gate to open before the rest.
final class HeldStream: SharedBodyStream {
  let base: any SharedBodyStream
  let gate: AsyncStream<Void>
  let served = Atomic<Int>(0)

  init(base: any SharedBodyStream, gate: AsyncStream<Void>) {
    self.base = base
    self.gate = gate
  }

  func next() async throws(CacheError) -> ByteBuffer? {
    if served.add(1, ordering: .relaxed).newValue == 2 {
      for await _ in gate {}
    }
    return try await base.next()
  }

  func cancel() async { await base.cancel() }
}

/// A RAM tier whose writes fail after `failAfterBytes`: a broken tier under the tee.
struct FailingWritesStore: Storage {
  let base: MemoryStore
  let failAfterBytes: Int

  func lookup(_ key: CacheKey) async throws(CacheError) -> CacheHit<MemoryHitHandler>? { try await base.lookup(key) }

  func lookupStreamingWrite(
    _ key: CacheKey, tag: StreamingWriteTag?
  ) async throws(CacheError) -> CacheHit<MemoryHitHandler>? {
    try await base.lookupStreamingWrite(key, tag: tag)
  }

  var supportsStreamingPartialWrite: Bool { base.supportsStreamingPartialWrite }

  func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> FailingMiss {
    FailingMiss(base: try await base.missHandler(for: key, meta: meta), key: key, failAfterBytes: failAfterBytes)
  }

  func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool {
    try await base.purge(key, reason: reason)
  }

  func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    try await base.updateMeta(key, meta: meta)
  }
}

final class FailingMiss: MissHandler {
  let base: MemoryMissHandler
  let key: CacheKey
  let failAfterBytes: Int
  let written = Atomic<Int>(0)

  init(base: MemoryMissHandler, key: CacheKey, failAfterBytes: Int) {
    self.base = base
    self.key = key
    self.failAfterBytes = failAfterBytes
  }

  var streamingWriteTag: StreamingWriteTag? { base.streamingWriteTag }

  func writeBody(_ data: ByteBuffer, eof: Bool) async throws(CacheError) {
    if written.add(data.readableBytes, ordering: .relaxed).newValue > failAfterBytes {
      throw .io(key: key.combinedHash, operation: "pwrite", path: "/injected", errno: 5)
    }
    try await base.writeBody(data, eof: eof)
  }

  func finish() async throws(CacheError) -> MissFinish { try await base.finish() }
  func abort(reason: String) async { await base.abort(reason: reason) }
}
