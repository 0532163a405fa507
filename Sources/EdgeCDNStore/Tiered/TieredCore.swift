import CoreMetrics
import Logging
import NIOCore
import Synchronization

/// The tiered store's state and its colder paths (disk, shared tier, purges), apart
/// from the `@inlinable` RAM path so that they are compiled once, here.
@usableFromInline
final class TieredCore<Memory: Storage, Disk: Storage>: Sendable {
  let memory: Memory
  let disk: Disk?
  let shared: SharedTierClient?
  let configuration: TieredStoreConfiguration
  let metrics: TieredMetrics
  let logger: Logger
  let promotion: PromotionCounter
  let memoryLimit: Int?
  let uploads: WriteBehindQueue<CacheKey>?
  let retries: WriteBehindQueue<SharedRetry>?
  let worker: SharedWorker<Memory, Disk>?
  /// Client writes under way and done, per stripe of keys, so that a promotion or a
  /// shared-tier fill that raced one does not leave an older version in RAM.
  let writes = WriteStamps()
  /// Client writes into RAM and disk, by RAM tag, so that their readers can go on from
  /// disk if the write leaves RAM (see DiskHandoff).
  let handoffs = DiskHandoffs()
  private let purgeEpoch = Atomic<UInt64>(0)

  init(
    memory: Memory, disk: Disk?, shared: (any SharedTier)?, configuration: TieredStoreConfiguration,
    metrics: TieredMetrics, logger: Logger, deadlines: DeadlineWatch = .shared
  ) {
    self.memory = memory
    self.disk = disk
    self.configuration = configuration
    self.metrics = metrics
    self.logger = logger
    self.promotion = PromotionCounter(rule: configuration.promotion, capacity: configuration.promotionTrackedKeys)
    self.memoryLimit = configuration.memoryMaxObjectSize ?? (memory as? MemoryStore)?.configuration.maxObjectSize
    if let shared {
      let client = SharedTierClient(
        tier: shared, configuration: configuration.shared, metrics: metrics, deadlines: deadlines)
      let worker = SharedWorker(
        memory: memory, disk: disk, client: client, registry: UploadRegistry(), metrics: metrics, logger: logger)
      self.shared = client
      self.worker = worker
      self.uploads =
        configuration.writeBehind
        ? WriteBehindQueue(
          capacity: configuration.shared.writeBehindCapacity, handle: { key in await worker.upload(key) },
          onDrop: { key in
            metrics.sharedDropped.increment()
            logger.debug("write-behind queue full, upload dropped", metadata: ["key": "\(key.combinedHash.hex)"])
          })
        : nil
      self.retries = WriteBehindQueue(
        capacity: configuration.shared.retryCapacity, handle: { job in await worker.retry(job) },
        onDrop: { job in
          metrics.sharedDropped.increment()
          logger.warning("shared-tier retry queue full, \(job) dropped")
        })
    } else {
      self.shared = nil
      self.worker = nil
      self.uploads = nil
      self.retries = nil
    }
  }

  /// Bumped by every purge and meta update: a copy into an upper tier that began
  /// before one is abandoned, so a purged or revalidated object is not brought back.
  var epoch: UInt64 { purgeEpoch.load(ordering: .acquiring) }

  @usableFromInline
  func lookupBelow(_ key: CacheKey) async throws(CacheError) -> CacheHit<TieredHitHandler<Memory, Disk>>? {
    let epoch = self.epoch
    // Read before the lower tiers: a client write that commits after this is seen.
    let stamp = writes.stamp(key.combinedHash)
    // A write of this key that left RAM and goes on on disk: followed there, by disk's tag
    // (never waiting for a commit inside a lookup). Without this every request during the
    // rest of a large fill missed and fetched the object again. A failure here is a miss
    // of this path: the lookups below decide.
    if let handoff = handoffs.handoff(forKey: key.combinedHash), handoff.diskTag != nil,
      let followed = try? await followedWrite(key, handoff: handoff, memoryHit: nil)
    {
      return followed
    }
    if let disk {
      do {
        if let hit = try await disk.lookup(key) { return await diskHit(key, hit, epoch: epoch, stamp: stamp) }
      } catch {
        // With a shared tier below, a failing disk lookup is a local miss.
        guard shared != nil else { throw error }
        logger.warning("disk lookup failed, asking the shared tier", metadata: ["error": "\(error)"])
      }
    }
    guard let shared else { return nil }
    return await sharedHit(key, shared, epoch: epoch, stamp: stamp)
  }

  private func diskHit(
    _ key: CacheKey, _ hit: CacheHit<Disk.Hit>, epoch: UInt64, stamp: UInt64
  ) async -> CacheHit<
    TieredHitHandler<Memory, Disk>
  > {
    var fill: TeeMissHandler<Memory, Disk>?
    if promotion.recordHit(key.combinedHash), hit.handler.evictionWeight <= memoryLimit ?? .max,
      let miss = try? await memory.missHandler(for: key, meta: hit.meta)
    {
      fill = TeeMissHandler(
        key: key, memory: miss, disk: nil, memoryLimit: nil, metrics: metrics, logger: logger, onFinish: nil)
    }
    let read = TieredLowerRead(
      source: .disk(hit.handler), fill: fill, core: self, key: key, epoch: epoch, stamp: stamp,
      isPromotion: true)
    return CacheHit(meta: hit.meta, handler: .init(lower: read))
  }

  private func sharedHit(
    _ key: CacheKey, _ shared: SharedTierClient, epoch: UInt64, stamp: UInt64
  ) async -> CacheHit<
    TieredHitHandler<Memory, Disk>
  >? {
    let head: SharedObjectHead
    let stream: TimedBodyStream
    do {
      guard let opened = try await shared.open(key) else { return nil }
      (head, stream) = opened
    } catch {
      logger.debug("shared tier lookup failed, served as a miss", metadata: ["error": "\(error)"])
      return nil
    }
    var fill: TeeMissHandler<Memory, Disk>?
    if configuration.fillFromShared {
      let fitsMemory = (head.bodySize ?? 0) <= memoryLimit ?? .max
      let memoryMiss = fitsMemory ? try? await memory.missHandler(for: key, meta: head.meta) : nil
      let diskMiss = try? await disk?.missHandler(for: key, meta: head.meta)
      if memoryMiss != nil || diskMiss != nil {
        fill = TeeMissHandler(
          key: key, memory: memoryMiss, disk: diskMiss, memoryLimit: memoryLimit, metrics: metrics, logger: logger,
          onFinish: nil)
      }
    }
    let read = TieredLowerRead(
      source: .shared(stream, size: head.bodySize), fill: fill, core: self, key: key, epoch: epoch,
      stamp: stamp, isPromotion: false)
    return CacheHit(meta: head.meta, handler: .init(lower: read))
  }

  /// Removes a copy that finished after a purge or meta update began: a removal is
  /// harmless (the next lookup misses), bringing back a purged object is not.
  func discardCopy(of key: CacheKey, memory inMemory: Bool, disk onDisk: Bool) async {
    if inMemory { _ = try? await memory.purge(key.compact, reason: .invalidation) }
    if onDisk, let disk { _ = try? await disk.purge(key.compact, reason: .invalidation) }
  }

  func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> TeeMissHandler<Memory, Disk> {
    // Counted from before any tier can commit until the tee ends (see WriteStamps).
    writes.writeStarted(key.combinedHash)
    var firstError: CacheError?
    var memoryMiss: Memory.Miss?
    do { memoryMiss = try await memory.missHandler(for: key, meta: meta) } catch {
      firstError = error
      metrics.memoryWriteFailures.increment()
    }
    var diskMiss: Disk.Miss?
    if let disk {
      do { diskMiss = try await disk.missHandler(for: key, meta: meta) } catch {
        firstError = firstError ?? error
        metrics.diskWriteFailures.increment()
      }
    }
    if memoryMiss == nil && diskMiss == nil {
      writes.writeEnded(key.combinedHash)
      throw firstError ?? .invalidState(key: key.combinedHash, reason: "no tier took the write")
    }
    var onFinish: (@Sendable (CacheKey) -> Void)?
    if let queue = uploads {
      onFinish = { key in queue.enqueue(key) }
    }
    let tag = diskMiss == nil ? nil : memoryMiss?.streamingWriteTag
    let handoff = tag.map {
      handoffs.register($0, key: key.combinedHash, meta: meta, diskTag: diskMiss?.streamingWriteTag)
    }
    // A newer write that cannot be followed by key: lookups must not follow an older one.
    if handoff == nil { handoffs.forget(key: key.combinedHash) }
    return TeeMissHandler(
      key: key, memory: memoryMiss, disk: diskMiss, memoryLimit: memoryLimit, metrics: metrics, logger: logger,
      onFinish: onFinish, writes: writes, handoff: handoff)
  }

  /// A reader of a client write, from its handoff (nil when the write goes to RAM alone
  /// or has ended) and its RAM copy `memoryHit` (nil once the write left RAM); nil when
  /// there is no such write to read.
  func followedWrite(
    _ key: CacheKey, handoff: DiskHandoff?, memoryHit: CacheHit<Memory.Hit>?
  ) async throws(CacheError) -> CacheHit<TieredHitHandler<Memory, Disk>>? {
    guard let disk, let handoff else {
      return memoryHit.map { CacheHit(meta: $0.meta, handler: .init(memory: $0.handler)) }
    }
    let read: FollowedWrite<Memory, Disk>
    if let memoryHit {
      read = FollowedWrite(memory: memoryHit.handler, diskTier: disk, handoff: handoff, key: key)
    } else {
      let onDisk = try await FollowedWrite<Memory, Disk>(onDisk: disk, handoff: handoff, key: key)
      guard let onDisk else { return nil }
      read = onDisk
    }
    let lower = TieredLowerRead(
      source: .followed(read), fill: nil, core: self, key: key, epoch: epoch, stamp: 0, isPromotion: false)
    return CacheHit(meta: memoryHit?.meta ?? handoff.meta, handler: .init(lower: lower))
  }

  func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool {
    purgeEpoch.add(1, ordering: .releasing)
    // A write in progress is hidden from lookups by key, as RAM hides its own; its readers
    // by tag go on.
    handoffs.forget(key: key.combinedHash)
    var removed = false
    var firstError: CacheError?
    do { removed = try await memory.purge(key, reason: reason) } catch { firstError = error }
    if let disk {
      do { removed = try await disk.purge(key, reason: reason) || removed } catch { firstError = firstError ?? error }
    }
    // Evictions are local decisions; only invalidations reach the shared tier.
    if let shared, let worker, reason == .invalidation {
      // An upload of this key already reading the local copy would store it again
      // after the delete; wait for it a call's time, else it deletes after itself.
      await worker.registry.waitForUpload(of: key, limit: configuration.shared.callTimeout)
      do {
        removed = try await shared.delete(key) || removed
      } catch {
        logger.info("shared tier purge failed, retried in the background", metadata: ["error": "\(error)"])
        retries?.enqueue(.delete(key))
      }
    }
    if let firstError { throw firstError }
    return removed
  }

  func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    purgeEpoch.add(1, ordering: .releasing)
    var updated = false
    var firstError: CacheError?
    do { updated = try await memory.updateMeta(key, meta: meta) } catch { firstError = error }
    if let disk {
      do { updated = try await disk.updateMeta(key, meta: meta) || updated } catch { firstError = firstError ?? error }
    }
    if let shared {
      do {
        updated = try await shared.updateMeta(key, meta: meta) || updated
      } catch {
        logger.info("shared tier meta update failed, retried in the background", metadata: ["error": "\(error)"])
        retries?.enqueue(.updateMeta(key, meta))
      }
    }
    if let firstError { throw firstError }
    return updated
  }
}
