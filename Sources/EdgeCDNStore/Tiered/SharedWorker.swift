import CoreMetrics
import Logging
import NIOCore
import Synchronization

/// A shared-tier operation that failed and is tried again in the background.
enum SharedRetry: Sendable, CustomStringConvertible {
  case delete(CompactCacheKey)
  case updateMeta(CacheKey, CacheMeta)

  var description: String {
    switch self {
    case .delete(let key): "purge of \(key.combinedHash.hex)"
    case .updateMeta(let key, _): "meta update of \(key.combinedHash.hex)"
    }
  }
}

/// The background side of the shared tier: uploads (re-reading each object from the
/// local tiers, so the queue holds keys, not bodies) and bounded retries.
struct SharedWorker<Memory: Storage, Disk: Storage>: Sendable {
  let memory: Memory
  let disk: Disk?
  let client: SharedTierClient
  let registry: UploadRegistry
  let metrics: TieredMetrics
  let logger: Logger

  func upload(_ key: CacheKey) async {
    let task = registry.start(key.compact) { Task { await performUpload(key) } }
    await task.value
    if registry.end(key.compact, task) {
      // A purge of this key gave up waiting for this upload and may have deleted
      // before it stored: delete again so the purged object does not stay shared.
      do { _ = try await client.delete(key.compact) } catch {
        metrics.sharedWriteFailures.increment()
        logger.warning(
          "delete after an upload that raced a purge failed; the shared tier may keep the purged object",
          metadata: ["key": "\(key.combinedHash.hex)", "error": "\(error)"])
      }
    }
  }

  private func performUpload(_ key: CacheKey) async {
    if let hit = try? await memory.lookup(key) {
      await send(key, hit)
    } else if let disk, let hit = try? await disk.lookup(key) {
      await send(key, hit)
    }
    // Gone from both (purged or evicted since): nothing to upload.
  }

  private func send<Handler: HitHandler>(_ key: CacheKey, _ hit: CacheHit<Handler>) async {
    let body = LocalBodyStream(handler: hit.handler)
    do {
      try await client.store(key, meta: hit.meta, body: body)
    } catch {
      metrics.sharedWriteFailures.increment()
      logger.info(
        "upload to the shared tier failed", metadata: ["key": "\(key.combinedHash.hex)", "error": "\(error)"])
    }
    await body.cancel()
  }

  /// Tries `job` again up to `maxAttempts - 1` times, pausing longer each time.
  func retry(_ job: SharedRetry) async {
    let configuration = client.configuration
    var pause = configuration.retryBackoff
    for _ in 1..<configuration.maxAttempts {
      do { try await Task.sleep(for: pause) } catch { return }
      pause *= 2
      metrics.sharedRetries.increment()
      do {
        switch job {
        case .delete(let key): _ = try await client.delete(key)
        case .updateMeta(let key, let meta): _ = try await client.updateMeta(key, meta: meta)
        }
        return
      } catch {
        continue
      }
    }
    metrics.sharedRetriesExhausted.increment()
    logger.warning("shared tier \(job) failed after \(configuration.maxAttempts) attempts; given up")
  }
}

/// Uploads in progress by key, so a purge can wait for the one of its key.
final class UploadRegistry: Sendable {
  private struct Running {
    var task: Task<Void, Never>
    var purged = false
  }

  private let running = Mutex<[CompactCacheKey: Running]>([:])

  /// Starts the upload under the lock, so a purge that looks after its local purge
  /// either finds this upload or knows it will read the purged (empty) local tiers.
  func start(_ key: CompactCacheKey, _ make: () -> Task<Void, Never>) -> Task<Void, Never> {
    running.withLock { running in
      let task = make()
      running[key] = Running(task: task)
      return task
    }
  }

  /// Ends an upload; true when a purge of its key stopped waiting for it.
  func end(_ key: CompactCacheKey, _ task: Task<Void, Never>) -> Bool {
    running.withLock { running in
      guard let entry = running[key], entry.task == task else { return false }
      running.removeValue(forKey: key)
      return entry.purged
    }
  }

  /// Waits, at most `limit`, for an upload of `key` in progress. If it is still running
  /// then, it is marked so that it deletes what it stored once it ends.
  func waitForUpload(of key: CompactCacheKey, limit: Duration) async {
    guard let task = running.withLock({ $0[key]?.task }) else { return }
    let ended =
      (try? await withDeadline(limit, tier: "shared", operation: "wait for upload") {
        () async throws(CacheError) -> Bool in
        await task.value
        return true
      }) ?? false
    if !ended {
      running.withLock { running in
        if running[key]?.task == task { running[key]?.purged = true }
      }
    }
  }
}

/// A local hit handler read as a shared body stream (for uploads).
actor LocalBodyStream<Handler: HitHandler>: SharedBodyStream {
  private var handler: Handler
  private var finished = false

  init(handler: Handler) {
    self.handler = handler
  }

  func next() async throws(CacheError) -> ByteBuffer? {
    guard !finished else { return nil }
    var reading = handler
    defer { handler = reading }
    return try await reading.readBody()
  }

  func cancel() async {
    guard !finished else { return }
    finished = true
    var reading = handler
    try? await reading.finish()
    handler = reading
  }
}
