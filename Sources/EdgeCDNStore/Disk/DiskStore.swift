import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The disk tier: a log-structured store in one preallocated file, cut into regions.
///
/// - Writes append records (object heads, body fragments, tombstones) to the open
///   region's RAM buffer; full regions go to the file in one pwrite, on NIO's thread
///   pool. A write in flight holds at most one fragment of its body.
/// - A compact index (8 bytes a slot) maps key hashes to head records; every read
///   checks the record's full hash and CRCs, so a collision or a damaged block is a
///   miss (and a purge), never wrong bytes.
/// - When no region is free, the oldest is reclaimed whole (FIFO); its objects leave
///   the index and are reported to the observer and the eviction manager, except those
///   read since written, which are written again (per `reinsertion`).
/// - Opening replays the log to rebuild the index; `flush()` (on a timer every
///   `flushIntervalMilliseconds`) is the durability point.
///
/// An object is visible to `lookup` once finished. A write in progress is read only
/// through its tag (`lookupStreamingWrite`), a fragment at a time as it is appended
/// (`DiskWriteProgress`): so `supportsStreamingPartialWrite` stays false, and the
/// tiered store's readers of a write that left RAM follow it here.
public final class DiskStore: Storage {
  public typealias Hit = DiskHitHandler
  public typealias Miss = DiskMissHandler

  public static let tierName = "disk"
  static let fileName = "cache.data"
  /// The first read of a head: enough for the meta and a small body (4 KiB objects are
  /// inline), so most hits of small objects cost one read.
  static let headReadSize = 8192

  public let configuration: DiskStoreConfiguration
  /// Told which keys left when a region is reclaimed or an object is purged.
  public let evictionManager: (any EvictionManager)?
  /// What the startup scan found.
  public let recoveryReport: RecoveryReport
  let observer: (any StorageObserver)?
  let index: DiskIndex
  let writer: RegionWriter
  let counters = DiskCounters()
  /// Buffers in which writes gather partial fragments.
  let staging: StagingBuffers
  /// Writes a tag finds: in progress, and just committed.
  let writes = DiskWrites()
  let logger = Logger(label: "edge-cdn-store.disk")
  private let flushTask = Mutex<Task<Void, Never>?>(nil)
  private let closed = Atomic<Bool>(false)

  private init(
    configuration: DiskStoreConfiguration, writer: RegionWriter, index: DiskIndex, report: RecoveryReport,
    evictionManager: (any EvictionManager)?, observer: (any StorageObserver)?
  ) {
    self.configuration = configuration
    self.staging = StagingBuffers(size: configuration.fragmentSize, limit: 4)
    self.writer = writer
    self.index = index
    self.recoveryReport = report
    self.evictionManager = evictionManager
    self.observer = observer
  }

  /// Opens (or creates) the cache under `configuration.path` and rebuilds the index.
  ///
  /// - Throws: `unavailable` naming the setting for an invalid configuration; `io` naming
  ///   the path when the folder or file cannot be created or read.
  public static func open(
    configuration: DiskStoreConfiguration,
    evictionManager: (any EvictionManager)? = nil,
    observer: (any StorageObserver)? = nil
  ) async throws(CacheError) -> DiskStore {
    do throws(ConfigurationError) {
      try configuration.validate()
    } catch {
      throw .unavailable(tier: tierName, reason: error.description)
    }
    let path = configuration.path
    try await DurableFile.onIOThread { () throws(CacheError) in try DurableFile.makeDirectory(path) }
    let filePath = path + "/" + fileName
    let direct = configuration.directWrites
    let io = try await DurableFile.onIOThread { () throws(CacheError) -> FileDiskIO in
      try FileDiskIO(path: filePath, direct: direct)
    }
    return try await open(configuration: configuration, io: io, evictionManager: evictionManager, observer: observer)
  }

  /// Opens over any DiskIO (tests inject faults here).
  static func open(
    configuration: DiskStoreConfiguration, io: any DiskIO,
    evictionManager: (any EvictionManager)? = nil, observer: (any StorageObserver)? = nil
  ) async throws(CacheError) -> DiskStore {
    do throws(ConfigurationError) {
      try configuration.validate()
    } catch {
      throw .unavailable(tier: tierName, reason: error.description)
    }
    let regionCount = configuration.regionCount
    let fileSize = RecordFormat.fileHeaderSize + regionCount * configuration.regionSize
    // Read the file header: a header of another geometry (or none) means a new cache.
    let (existing, existingVersion) = try await DurableFile.onIOThread {
      () throws(CacheError) -> (RecordFormat.FileHeader?, UInt16?) in
      let bytes = try io.read(count: RecordFormat.fileHeaderSize, at: 0)
      guard bytes.count == RecordFormat.fileHeaderSize else { return (nil, nil) }
      return bytes.withUnsafeBytes { (RecordFormat.FileHeader($0), RecordFormat.FileHeader.version(of: $0)) }
    }
    let logger = Logger(label: "edge-cdn-store.disk")
    // A cache file of another format version is never read: its records would be
    // misparsed. It is started afresh below (new nonce, every region header zeroed).
    if existing == nil, let existingVersion, existingVersion != RecordFormat.version {
      logger.notice(
        "disk cache file has another format version: starting empty",
        metadata: [
          "path": "\(io.path)", "file_version": "\(existingVersion)", "supported_version": "\(RecordFormat.version)",
        ])
    }
    let header: RecordFormat.FileHeader
    let reuse = existing.map { $0.regionSize == configuration.regionSize && $0.regionCount == regionCount } ?? false
    if reuse, let existing {
      header = existing
      // A truncated file is extended again; the regions past the cut scan as empty.
      try await DurableFile.onIOThread { () throws(CacheError) in
        if try io.size() < fileSize { try io.allocate(size: fileSize) }
      }
    } else {
      if existing != nil {
        logger.notice("disk cache geometry changed: starting empty", metadata: ["path": "\(io.path)"])
      }
      header = RecordFormat.FileHeader(
        regionSize: configuration.regionSize, regionCount: regionCount, nonce: UInt64.random(in: 1...UInt64.max))
      let bytes = header.encoded()
      try await DurableFile.onIOThread { () throws(CacheError) in
        try io.allocate(size: fileSize)
        // Invalidate every region header of an earlier cache in this file.
        let zeros = [UInt8](repeating: 0, count: RecordFormat.regionHeaderSize)
        for region in 0..<regionCount {
          try io.write(zeros, at: RecordFormat.fileHeaderSize + region * configuration.regionSize)
        }
        try io.write(bytes, at: 0)
        try io.sync()
      }
    }
    let index = DiskIndex()
    let scanner = RegionWriter(
      io: io, regionSize: configuration.regionSize, regionCount: regionCount, nonce: header.nonce,
      recovered: .empty(regionCount: regionCount))
    // A snapshot from a clean close is read, then deleted before anything is written, so
    // a crash from here on replays the log instead of trusting a stale snapshot.
    let snapshotPath = IndexSnapshot.path(for: io)
    let snapshotBytes = try? await DurableFile.onIOThread { () throws(CacheError) -> [UInt8]? in
      let bytes = try DurableFile.readAll(path: snapshotPath)
      if bytes != nil { IndexSnapshot.remove(path: snapshotPath) }
      return bytes
    }
    let snapshot = (snapshotBytes ?? nil).flatMap {
      reuse
        ? IndexSnapshot($0, nonce: header.nonce, regionSize: configuration.regionSize, regionCount: regionCount) : nil
    }
    if (snapshotBytes ?? nil) != nil && snapshot == nil {
      logger.notice("disk cache index snapshot rejected: replaying the log", metadata: ["path": "\(snapshotPath)"])
    }
    var (recovered, report) = try await Recovery.recover(
      writer: scanner, regionCount: regionCount, index: index, snapshot: snapshot)
    if existing == nil, let existingVersion, existingVersion != RecordFormat.version {
      report.rejectedFormatVersion = existingVersion
    }
    if report.corruptRecords > 0 || report.incompleteObjects > 0 {
      logger.warning(
        "disk cache recovery skipped damaged records",
        metadata: [
          "path": "\(io.path)", "corrupt_records": "\(report.corruptRecords)",
          "incomplete_objects": "\(report.incompleteObjects)",
        ])
    }
    let writer = RegionWriter(
      io: io, regionSize: configuration.regionSize, regionCount: regionCount, nonce: header.nonce,
      recovered: recovered)
    let store = DiskStore(
      configuration: configuration, writer: writer, index: index, report: report, evictionManager: evictionManager,
      observer: observer)
    store.counters.count(store.counters.corruptRecords, report.corruptRecords)
    store.start()
    return store
  }

  private func start() {
    writer.lostRegionHandler.withLock { handler in
      handler = { [weak self] buffer, used, error in self?.regionLost(buffer, used: used, error: error) }
    }
    writer.ioFailureHandler.withLock { handler in
      handler = { [weak self] error in self?.recordFailure(error) }
    }
    let interval = configuration.flushIntervalMilliseconds
    let task = Task { [weak self] in
      while !Task.isCancelled {
        try? await Task.sleep(for: .milliseconds(interval))
        guard let self, !self.closed.load(ordering: .relaxed) else { return }
        try? await self.flush()
      }
    }
    flushTask.withLock { $0 = task }
  }

  deinit {
    flushTask.withLock { $0 }?.cancel()
  }

  // MARK: Introspection

  /// Objects in the index now.
  public var objectCount: Int { index.count }
  /// Bytes of regions holding data: what the tier uses of `configuration.size`.
  public var usedBytes: Int { writer.usedBytes }
  /// The tier's budget: all its regions.
  public var capacityBytes: Int { configuration.regionCount * configuration.regionSize }
  /// Whether region writes bypass the page cache (O_DIRECT): asked for by
  /// `directWrites` and taken by the file system.
  public var writesDirect: Bool { writer.io.directBlockSize != nil }
  /// False after an I/O failure, until a later flush succeeds.
  public var isHealthy: Bool { counters.healthy.load(ordering: .relaxed) }

  public var statistics: DiskStoreStatistics {
    DiskStoreStatistics(
      objects: index.count, indexBytes: index.memoryBytes, usedBytes: usedBytes,
      filledBytes: writer.filledBytes,
      regionsReclaimed: counters.regionsReclaimed.load(ordering: .relaxed),
      objectsReclaimed: counters.objectsReclaimed.load(ordering: .relaxed),
      objectsReinserted: counters.objectsReinserted.load(ordering: .relaxed),
      purges: counters.purges.load(ordering: .relaxed),
      corruptRecords: counters.corruptRecords.load(ordering: .relaxed),
      ioErrors: counters.ioErrors.load(ordering: .relaxed),
      regionsLost: counters.regionsLost.load(ordering: .relaxed), healthy: isHealthy,
      lastError: counters.lastError.withLock { $0 })
  }

  // MARK: Storage

  public func lookup(_ key: CacheKey) async throws(CacheError) -> CacheHit<DiskHitHandler>? {
    try checkOpen()
    let hash = key.combinedHash
    for offset in index.candidates(hash) {
      guard let head = try await readHead(hash, at: offset) else { continue }
      let meta: CacheMeta
      do throws(CacheError) {
        meta = try CacheMeta(decoding: head.metaBytes, key: hash)
      } catch {
        dropCorrupt(hash, at: offset, weight: head.weight, reason: error.description)
        continue
      }
      index.markAccessed(hash, at: offset)
      evictionManager?.access(key.compact, size: head.weight, freshUntil: meta.freshUntil)
      return CacheHit(meta: meta, handler: DiskHitHandler(store: self, head: head, weight: head.weight))
    }
    return nil
  }

  /// With a tag, that write only: a reader following it while it is in progress, or the
  /// object it committed while it is still the key's (and among the last
  /// `DiskWrites.rememberedCommits` commits); nil otherwise.
  public func lookupStreamingWrite(
    _ key: CacheKey, tag: StreamingWriteTag?
  ) async throws(CacheError) -> CacheHit<DiskHitHandler>? {
    guard let tag else { return try await lookup(key) }
    try checkOpen()
    let hash = key.combinedHash
    switch writes.find(tag, hash: hash) {
    case .writing(let progress, let meta, let metaLength):
      return CacheHit(
        meta: meta, handler: DiskHitHandler(store: self, hash: hash, following: progress, weight: metaLength))
    case .committed(let head):
      // The offset and the region's use: a newer write of the key may sit at the same
      // offset of the region reused.
      guard let hit = try await lookup(key), hit.handler.committedHead == head else { return nil }
      return hit
    case nil:
      return nil
    }
  }

  public func missHandler(for key: CacheKey, meta: CacheMeta) async throws(CacheError) -> DiskMissHandler {
    try checkOpen()
    let metaBytes = meta.encoded()
    guard metaBytes.readableBytes <= RecordFormat.maxMetaSize else {
      throw .objectTooLarge(key: key.combinedHash, size: metaBytes.readableBytes, limit: RecordFormat.maxMetaSize)
    }
    return DiskMissHandler(store: self, key: key, meta: meta, metaBytes: metaBytes)
  }

  public func purge(_ key: CompactCacheKey, reason: PurgeReason) async throws(CacheError) -> Bool {
    try checkOpen()
    let hash = key.combinedHash
    // The tombstone makes the purge survive a restart; the entry leaves RAM at once.
    // The head is read once, and again only when the entry moved: waiting for room or
    // for a write in flight leaves it where it was.
    var target = await purgeTarget(hash)
    for _ in 0..<(2 * writer.regionCount) {
      guard let current = target else { return false }
      let removal = index.remove(hash, ifAt: current.offset) {
        writer.tryAppend(kind: .tombstone, hash: hash, payload: ByteBuffer(), payloadCRC: 0)
      }
      // Moved (rewritten, meta updated) or dropped since it was read: look again.
      guard let (outcome, _) = removal else {
        target = await purgeTarget(hash)
        continue
      }
      switch outcome {
      case .appended:
        counters.count(counters.purges)
        evictionManager?.remove(key)
        observer?.storage(
          Self.tierName,
          removed: StorageRemoval(
            key: key, weight: current.weight, reason: reason == .eviction ? .evictionPurge : .invalidation))
        return true
      case .needsRoom:
        try await reclaimOldest(for: hash)
      case .busy(let write):
        await write.value
      case .fragmentsLost:
        return false
      }
    }
    throw .insufficientSpace(key: hash, needed: RecordFormat.recordHeaderSize, budget: capacityBytes)
  }

  /// The key's head (not another key's of the same tag) and its weight, for the removal
  /// report. When it cannot be read the entry still goes, reported at weight 0.
  private func purgeTarget(_ hash: CacheHash) async -> (offset: Int, weight: Int)? {
    for offset in index.candidates(hash) {
      do throws(CacheError) {
        if let head = try await readHead(hash, at: offset) { return (offset, head.weight) }
      } catch {
        return (offset, 0)
      }
    }
    return nil
  }

  public func updateMeta(_ key: CacheKey, meta: CacheMeta) async throws(CacheError) -> Bool {
    try checkOpen()
    let hash = key.combinedHash
    let metaBytes = meta.encoded()
    guard metaBytes.readableBytes <= RecordFormat.maxMetaSize else {
      throw .objectTooLarge(key: hash, size: metaBytes.readableBytes, limit: RecordFormat.maxMetaSize)
    }
    for offset in index.candidates(hash) {
      guard let head = try await readHead(hash, at: offset) else { continue }
      let payload = HeadRecord.encodePayload(
        meta: metaBytes, bodyLength: head.bodyLength, fragments: head.fragments, blockCRCs: head.blockCRCs,
        inline: head.inline)
      let crc = payload.withUnsafeReadableBytes { CRC32C.checksum($0) }
      for _ in 0..<(2 * writer.regionCount) {
        let outcome = index.move(hash, from: offset, onlyIfAccessed: false) {
          writer.tryAppend(
            kind: .head, hash: hash, payload: payload, payloadCRC: crc, dependsOn: head.fragments,
            weight: HeadRecord.weight(metaLength: metaBytes.readableBytes, bodyLength: head.bodyLength))
        }
        switch outcome {
        case nil, .fragmentsLost: return false
        case .appended: return true
        case .needsRoom: try await reclaimOldest(for: hash)
        case .busy(let write): await write.value
        }
      }
      throw .insufficientSpace(key: hash, needed: payload.readableBytes, budget: capacityBytes)
    }
    return false
  }

  // MARK: Durability and lifecycle

  /// Writes everything appended so far and fsyncs: objects finished before the call
  /// survive a crash after it returns.
  public func flush() async throws(CacheError) {
    try await writer.flush()
    markHealthy()
  }

  /// Flushes and stops the timer; the store refuses work afterwards.
  public func close() async throws(CacheError) {
    guard !closed.exchange(true, ordering: .relaxed) else { return }
    flushTask.withLock { $0 }?.cancel()
    defer { writer.io.close() }
    try await writer.flush()
    // Everything is on disk: save the index so the next open can skip the replay.
    let state = writer.snapshotState()
    let snapshot = IndexSnapshot(
      nextSequence: state.nextSequence, sequences: state.sequences, order: state.order,
      dependents: state.dependents, tables: index.exportTables())
    let bytes = snapshot.encoded(nonce: writer.nonce, regionSize: configuration.regionSize)
    let path = IndexSnapshot.path(for: writer.io)
    do throws(CacheError) {
      try await DurableFile.onIOThread { () throws(CacheError) in try DurableFile.replace(path: path, with: bytes) }
    } catch {
      logger.warning("disk cache index snapshot not written", metadata: ["error": "\(error)"])
    }
  }

  private func checkOpen() throws(CacheError) {
    if closed.load(ordering: .relaxed) { throw .unavailable(tier: Self.tierName, reason: "the store is closed") }
  }

  // MARK: Records

  /// Appends a record, reclaiming regions when none is free.
  /// `firstOutcome`: the first attempt, when the caller made it already (off the pool).
  func append(
    kind: RecordFormat.Kind, hash: CacheHash, payload: ByteBuffer,
    firstOutcome: RegionWriter.AppendOutcome? = nil
  ) async throws(CacheError) -> RecordLocation {
    var first = firstOutcome
    for _ in 0..<(2 * writer.regionCount) {
      let outcome = first ?? writer.tryAppend(kind: kind, hash: hash, payload: payload)
      first = nil
      switch outcome {
      case .appended(let location): return location
      case .needsRoom: try await reclaimOldest(for: hash)
      case .busy(let write): await write.value
      case .fragmentsLost: break
      }
    }
    throw .insufficientSpace(key: hash, needed: payload.readableBytes, budget: capacityBytes)
  }

  /// Appends a finished object's head and makes it the key's object, in one step under
  /// the index shard's lock.
  /// Returns where the head went.
  @discardableResult
  func commitHead(
    key: CacheKey, payload: ByteBuffer, fragments: [FragmentRef], weight: Int, meta: CacheMeta
  ) async throws(CacheError) -> RecordLocation {
    let hash = key.combinedHash
    let crc = payload.withUnsafeReadableBytes { CRC32C.checksum($0) }
    for _ in 0..<(2 * writer.regionCount) {
      let (outcome, _) = index.insert(hash) {
        writer.tryAppend(
          kind: .head, hash: hash, payload: payload, payloadCRC: crc, dependsOn: fragments, weight: weight)
      }
      switch outcome {
      case .appended(let location):
        if let evictionManager {
          for victim in evictionManager.admit(key.compact, size: weight, freshUntil: meta.freshUntil)
          where victim != key.compact {
            _ = try? await purge(victim, reason: .eviction)
          }
        }
        return location
      case .needsRoom:
        try await reclaimOldest(for: hash)
      case .busy(let write):
        await write.value
      case .fragmentsLost:
        throw .writerFailed(
          key: hash, reason: "its first fragments were reclaimed before it finished (object too large for the cache?)")
      }
    }
    throw .insufficientSpace(key: hash, needed: payload.readableBytes, budget: capacityBytes)
  }

  /// Reads and checks the head record at `offset`; nil when it is not `hash`'s (tag
  /// collision, region reclaimed) or failed a check (then it is dropped and counted).
  func readHead(_ hash: CacheHash, at offset: Int) async throws(CacheError) -> HeadRecord? {
    guard let (first, sequence) = try await readRecovering(offset: offset, length: Self.headReadSize) else {
      return nil
    }
    // The seed binds the header to this use of the region: a record of another use fails.
    let seed = RecordFormat.headerSeed(nonce: writer.nonce, sequence: sequence)
    guard let header = first.withUnsafeReadableBytes({ RecordFormat.RecordHeader($0, seed: seed) }) else {
      dropCorrupt(hash, at: offset, reason: "head record header fails its check")
      return nil
    }
    guard header.hash == hash else { return nil }
    guard header.kind == .head else {
      dropCorrupt(hash, at: offset, reason: "index points at a \(header.kind) record")
      return nil
    }
    let total = RecordFormat.recordHeaderSize + header.payloadLength
    var bytes = first
    if first.readableBytes < total {
      guard let (all, _) = try await readRecovering(offset: offset, length: total, expectedSequence: sequence) else {
        return nil
      }
      bytes = all
    }
    guard bytes.readableBytes >= total,
      let payload = bytes.getSlice(at: bytes.readerIndex + RecordFormat.recordHeaderSize, length: header.payloadLength)
    else {
      dropCorrupt(hash, at: offset, reason: "head record cut short")
      return nil
    }
    guard payload.withUnsafeReadableBytes({ CRC32C.checksum($0) }) == header.payloadCRC,
      let head = HeadRecord(payload: payload, hash: hash, offset: offset, sequence: sequence)
    else {
      dropCorrupt(hash, at: offset, reason: "head record payload fails its CRC")
      return nil
    }
    return head
  }

  /// A read that counts failures; errors still propagate (a failing disk is not a miss).
  func readRecovering(
    offset: Int, length: Int, expectedSequence: UInt64? = nil
  ) async throws(CacheError) -> (ByteBuffer, sequence: UInt64)? {
    try await writer.read(offset: offset, length: length, expectedSequence: expectedSequence)
  }

  /// A record that failed a check: out of the index, counted, logged, reported with
  /// `weight` (0 when the head itself failed its check: then no length can be trusted).
  func dropCorrupt(_ hash: CacheHash, at offset: Int?, weight: Int = 0, reason: String) {
    guard index.remove(hash, ifAt: offset) != nil else { return }
    counters.count(counters.corruptRecords)
    logger.warning(
      "disk cache record failed its check: dropped",
      metadata: ["key": "\(hash.hex)", "offset": "\(offset ?? -1)", "reason": "\(reason)"])
    let key = CompactCacheKey(combinedHash: hash)
    evictionManager?.remove(key)
    observer?.storage(Self.tierName, removed: StorageRemoval(key: key, weight: weight, reason: .corrupt))
  }

  // MARK: Reclaim

  /// Frees the oldest region: its objects leave (or are written again when read since
  /// written and the rule says so), and every head depending on its fragments leaves.
  func reclaimOldest(for hash: CacheHash) async throws(CacheError) {
    guard let victim = writer.beginReclaim() else {
      throw .insufficientSpace(key: hash, needed: configuration.regionSize, budget: capacityBytes)
    }
    if let pending = victim.pendingWrite { await pending.value }
    var left: [(CacheHash, Int)] = []
    /// Heads read since written, small enough to rewrite: (hash, offset, payload, crc).
    var keep: [(CacheHash, Int, ByteBuffer, UInt32)] = []
    do throws(CacheError) {
      // Read and walked on NIO's thread pool: a region's worth of record checks is
      // per-byte work that must not hold a cooperative thread.
      let writer = self.writer
      let index = self.index
      let reinsert = configuration.reinsertion == .accessedSinceWritten
      let maxReinsert = configuration.regionSize / 8
      (left, keep) = try await DurableFile.onIOThread {
        () throws(CacheError) -> ([(CacheHash, Int)], [(CacheHash, Int, ByteBuffer, UInt32)]) in
        let bytes = try writer.readRegionBlocking(victim.region)
        let base = writer.regionOffset(victim.region)
        var left: [(CacheHash, Int)] = []
        var keep: [(CacheHash, Int, ByteBuffer, UInt32)] = []
        Recovery.forEachRecord(in: bytes, sequence: victim.sequence, nonce: writer.nonce) { header, within, payload in
          guard header.kind == .head else { return true }
          let offset = base + within
          // Only objects held entirely in their head (no fragments) are worth a rewrite.
          if reinsert, header.payloadLength <= maxReinsert, index.wasAccessed(header.hash, at: offset),
            let head = HeadRecord(
              payload: ByteBuffer(bytes: payload), hash: header.hash, offset: offset, sequence: victim.sequence),
            head.fragments.isEmpty
          {
            keep.append((header.hash, offset, ByteBuffer(bytes: payload), header.payloadCRC))
            return true
          }
          if index.remove(header.hash, ifAt: offset) != nil { left.append((header.hash, Self.weight(ofHead: payload))) }
          return true
        }
        return (left, keep)
      }
    } catch {
      // Unreadable region: its objects cannot be named, but none may stay indexed.
      logger.error("disk cache region unreadable at reclaim", metadata: ["error": "\(error)"])
    }
    for dependent in victim.dependents where index.remove(dependent.hash, ifAt: dependent.headOffset) != nil {
      left.append((dependent.hash, dependent.weight))
    }
    do throws(CacheError) {
      try await writer.invalidateHeader(victim.region)
    } catch {
      recordFailure(error)
    }
    writer.finishReclaim(victim.region)
    // Rewrite the kept objects now that a region is free; an entry still pointing at
    // its old place moves to the copy (until then readers see a miss: region gone).
    var reinserted = 0
    for (hash, offset, payload, crc) in keep {
      let outcome = index.move(hash, from: offset, onlyIfAccessed: true) {
        writer.tryAppend(kind: .head, hash: hash, payload: payload, payloadCRC: crc)
      }
      switch outcome {
      case .appended?: reinserted += 1
      case nil: break
      case .needsRoom?, .fragmentsLost?, .busy?:
        if index.remove(hash, ifAt: offset) != nil {
          left.append((hash, payload.withUnsafeReadableBytes { Self.weight(ofHead: $0) }))
        }
      }
    }
    counters.count(counters.regionsReclaimed)
    counters.count(counters.objectsReclaimed, left.count)
    counters.count(counters.objectsReinserted, reinserted)
    for (hash, weight) in left {
      let key = CompactCacheKey(combinedHash: hash)
      evictionManager?.remove(key)
      observer?.storage(Self.tierName, removed: StorageRemoval(key: key, weight: weight, reason: .capacity))
    }
  }

  /// Meta plus body bytes, from a head payload's fixed fields (its CRC was checked).
  static func weight(ofHead payload: UnsafeRawBufferPointer) -> Int {
    HeadRecord.weight(ofPayload: payload) ?? 0
  }

  /// A sealed region could not be written: drop what it held, report unhealthy.
  private func regionLost(_ buffer: RegionBuffer, used: Int, error: CacheError) {
    counters.count(counters.regionsLost)
    var bytes = ByteBuffer()
    bytes.writeBytes(UnsafeRawBufferPointer(rebasing: buffer.memory[0..<used]))
    let base = writer.regionOffset(buffer.region)
    var left: [(CacheHash, Int)] = []
    Recovery.forEachRecord(in: bytes, sequence: buffer.sequence, nonce: writer.nonce) { header, within, payload in
      if header.kind == .head, index.remove(header.hash, ifAt: base + within) != nil {
        left.append((header.hash, Self.weight(ofHead: payload)))
      }
      return true
    }
    let dependents = writer.state.withLock { $0.dependents[buffer.region] }
    for dependent in dependents where index.remove(dependent.hash, ifAt: dependent.headOffset) != nil {
      left.append((dependent.hash, dependent.weight))
    }
    logger.error(
      "disk cache region write failed: its objects were dropped",
      metadata: ["error": "\(error)", "objects": "\(left.count)"])
    for (hash, weight) in left {
      let key = CompactCacheKey(combinedHash: hash)
      evictionManager?.remove(key)
      observer?.storage(Self.tierName, removed: StorageRemoval(key: key, weight: weight, reason: .capacity))
    }
  }

  private func recordFailure(_ error: CacheError) {
    counters.count(counters.ioErrors)
    counters.healthy.store(false, ordering: .relaxed)
    counters.lastError.withLock { $0 = error.description }
  }

  private func markHealthy() {
    counters.healthy.store(true, ordering: .relaxed)
  }
}

extension DiskStore: StatisticsReporting, HealthReporting {
  public var storageStatistics: StorageStatistics {
    StorageStatistics(objectCount: index.count, usedBytes: usedBytes)
  }

  /// Degraded after an I/O error until a later flush succeeds: the tier serves what it
  /// still can, but new objects are lost. Records that failed their checks since open
  /// (each served as a miss and purged) are listed as a note on an ok tier: the tier
  /// still serves, and a restart should not be what clears a readiness probe.
  public func health() async -> [TierHealth] {
    let statistics = self.statistics
    if !statistics.healthy {
      return [
        TierHealth(
          tier: Self.tierName, status: .degraded,
          reasons: ["the last disk write failed: \(statistics.lastError ?? "unknown error")"])
      ]
    }
    if statistics.corruptRecords > 0 || statistics.regionsLost > 0 {
      return [
        TierHealth(
          tier: Self.tierName, status: .ok,
          reasons: [
            "\(statistics.corruptRecords) records failed their checksum and \(statistics.regionsLost) regions were lost since open"
          ])
      ]
    }
    return [TierHealth(tier: Self.tierName, status: .ok)]
  }
}
