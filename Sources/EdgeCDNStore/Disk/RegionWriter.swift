import NIOCore
import NIOPosix
import Synchronization

/// One region's bytes in RAM while it is open or being written out.
///
/// `@unchecked Sendable` because the memory is shared without a lock on purpose:
/// bytes are only ever written below the region's `used` mark while the writer's
/// mutex is held, and `used` only grows, so anyone who read `used` under that mutex
/// may read the bytes below it at leisure (flusher, readers): they never change again.
/// Bytes at or above `used` are never read by anyone but the appender, with one
/// exception once the region is sealed (no append touches it again): its direct write
/// zero-fills the tail of its last block in place, past `used`, where the end marker
/// goes (`RegionWriter.writeBlocks`).
final class RegionBuffer: @unchecked Sendable {
  let region: Int
  let sequence: UInt64
  /// The header CRC seed of this use of the region (`RecordFormat.headerSeed`).
  let seed: UInt32
  let memory: UnsafeMutableRawBufferPointer
  private let pool: RegionBufferPool?

  /// Not zeroed: every byte below `used` is written by an append (padding included),
  /// and the file gets an end marker after the last record instead of a zeroed tail.
  /// Taken from `pool` when it has a spare, so a steady stream of writes reuses a few
  /// buffers instead of faulting in fresh pages for every region.
  init(region: Int, sequence: UInt64, nonce: UInt64, size: Int, pool: RegionBufferPool? = nil) {
    self.region = region
    self.sequence = sequence
    self.seed = RecordFormat.headerSeed(nonce: nonce, sequence: sequence)
    self.memory = pool?.take(size: size) ?? .allocate(byteCount: size, alignment: 4096)
    self.pool = pool
  }

  /// The last reference is gone (no reader, no write in flight can touch the memory):
  /// hand the memory to the pool, or free it.
  deinit {
    if let pool { pool.give(memory) } else { memory.deallocate() }
  }
}

/// Spare region buffers of one writer, bounded, so RAM stays at a few regions.
final class RegionBufferPool: Sendable {
  /// A raw buffer that moves between threads only through the pool's lock.
  private struct Spare: @unchecked Sendable {
    var memory: UnsafeMutableRawBufferPointer
  }

  private let spares = Mutex<[Spare]>([])
  let limit: Int

  init(limit: Int) { self.limit = limit }

  func take(size: Int) -> UnsafeMutableRawBufferPointer? {
    spares.withLock { list in
      guard let index = list.firstIndex(where: { $0.memory.count == size }) else { return nil }
      return list.remove(at: index).memory
    }
  }

  func give(_ memory: UnsafeMutableRawBufferPointer) {
    let kept = spares.withLock { list -> Bool in
      guard list.count < limit else { return false }
      list.append(Spare(memory: memory))
      return true
    }
    if !kept { memory.deallocate() }
  }

  deinit {
    spares.withLock { list in
      for spare in list { spare.memory.deallocate() }
      list.removeAll()
    }
  }
}

/// Where a record was appended.
struct RecordLocation: Hashable, Sendable {
  var offset: Int
  var sequence: UInt64
}

/// A head record in a later region that needs fragments in this one: reclaiming this
/// region must drop that head too.
struct RegionDependent: Hashable, Sendable {
  var hash: CacheHash
  var headOffset: Int
  /// The head's object weight (meta and body bytes), for the removal report: the head
  /// itself lies in another region, not read at reclaim.
  var weight: Int
}

/// Appends records to the open region's buffer and writes regions to the file.
///
/// One shared open region behind a mutex: an append is a bounds check and a memcpy of
/// at most one fragment, so the critical section is short, and every record lands in
/// one sequential stream. A full region is sealed and written with one large pwrite
/// on the I/O pool while appends continue in the next region; a timer writes the open
/// region's tail and fsyncs (`flush()`), which is the durability point.
final class RegionWriter: Sendable {
  enum AppendOutcome: Sendable {
    case appended(RecordLocation)
    /// No free region: reclaim one and retry.
    case needsRoom
    /// A fragment the record depends on was reclaimed meanwhile.
    case fragmentsLost
    /// Too many full regions wait for the disk: wait for this write, then retry. This
    /// is the backpressure that keeps RAM bounded when writers outpace the disk.
    case busy(Task<Void, Never>)
  }

  /// Sealed regions allowed to wait for their write before appends wait too.
  static let maxPendingRegions = 2

  /// Threads of their own for region writes. On NIO's shared pool (2 threads on a
  /// 2-core machine) two region writes in flight took both threads, and the next
  /// fragment's CRC and copy, which run there too, waited for a write to end: filling
  /// stalled behind the disk instead of overlapping it. Process-wide (like NIO's own
  /// pool) and never shut down, so a store dropped without close() leaks no thread.
  static let regionWritePool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: maxPendingRegions)
    pool.start()
    return pool
  }()

  struct Pending: Sendable {
    var buffer: RegionBuffer
    var used: Int
    var task: Task<Void, Never>?
  }

  struct State: Sendable {
    var open: RegionBuffer?
    var used = 0
    var flushed = 0
    /// The latest write of the open region's tail (by `flush()`). Tail writes run one
    /// after another, and a sealed region's write waits for them: each ends with an end
    /// marker, which must never land on records a later write already put in the file.
    var tailWrite: Task<Result<Void, CacheError>, Never>?
    var pending: [Int: Pending] = [:]
    /// Regions holding data, oldest sequence first (sealed ones, pending or written).
    var sealedOrder: [Int] = []
    var free: [Int]
    /// Current sequence of each region; 0 while free or being reclaimed.
    var sequences: [UInt64]
    var nextSequence: UInt64
    var dependents: [[RegionDependent]]
  }

  let io: any DiskIO
  let regionSize: Int
  let regionCount: Int
  let nonce: UInt64
  let state: Mutex<State>
  /// Region buffers whose writes finished, for the next regions to open.
  let pool = RegionBufferPool(limit: 2)
  /// Told about a sealed region whose write failed, so the store drops what it held.
  let lostRegionHandler = Mutex<(@Sendable (RegionBuffer, Int, CacheError) -> Void)?>(nil)
  /// Called with each I/O failure, for health and counters.
  let ioFailureHandler = Mutex<(@Sendable (CacheError) -> Void)?>(nil)

  init(io: any DiskIO, regionSize: Int, regionCount: Int, nonce: UInt64, recovered: RecoveredRegions) {
    self.io = io
    self.regionSize = regionSize
    self.regionCount = regionCount
    self.nonce = nonce
    self.state = Mutex(
      State(
        sealedOrder: recovered.order, free: recovered.free, sequences: recovered.sequences,
        nextSequence: recovered.nextSequence, dependents: recovered.dependents))
  }

  func regionOffset(_ region: Int) -> Int { RecordFormat.fileHeaderSize + region * regionSize }
  func region(ofOffset offset: Int) -> Int { (offset - RecordFormat.fileHeaderSize) / regionSize }

  /// Bytes held in regions (open, sealed and written): what the tier uses of its budget.
  var usedBytes: Int {
    state.withLock { ($0.sealedOrder.count + ($0.open == nil ? 0 : 1)) * regionSize }
  }

  /// Bytes of regions holding data, counting only the filled part of the open one.
  var filledBytes: Int {
    state.withLock { $0.sealedOrder.count * regionSize + ($0.open == nil ? 0 : $0.used) }
  }

  /// Appends one record. `dependsOn` are fragments the record needs (a head of `weight`
  /// meta and body bytes): each must still be
  /// in its region, which then learns that this head depends on it.
  func tryAppend(
    kind: RecordFormat.Kind, hash: CacheHash, payload: ByteBuffer, payloadCRC: UInt32 = 0,
    dependsOn: [FragmentRef] = [], weight: Int = 0
  ) -> AppendOutcome {
    payload.withUnsafeReadableBytes { bytes in
      tryAppend(kind: kind, hash: hash, bytes: bytes, payloadCRC: payloadCRC, dependsOn: dependsOn, weight: weight)
    }
  }

  /// The same from raw bytes, which are copied into the region before it returns.
  func tryAppend(
    kind: RecordFormat.Kind, hash: CacheHash, bytes: UnsafeRawBufferPointer, payloadCRC: UInt32 = 0,
    dependsOn: [FragmentRef] = [], weight: Int = 0
  ) -> AppendOutcome {
    let space = RecordFormat.recordSpace(payload: bytes.count)
    precondition(space <= regionSize - RecordFormat.regionHeaderSize, "record larger than a region")
    return state.withLock { s -> AppendOutcome in
      if s.open != nil, s.used + space > regionSize {
        if s.pending.count >= Self.maxPendingRegions, let task = s.pending.values.first?.task { return .busy(task) }
        seal(&s)
      }
      if s.open == nil {
        guard let region = s.free.popLast() else { return .needsRoom }
        let sequence = s.nextSequence
        s.nextSequence += 1
        let buffer = RegionBuffer(region: region, sequence: sequence, nonce: nonce, size: regionSize, pool: pool)
        RecordFormat.writeRegionHeader(sequence: sequence, nonce: nonce, into: buffer.memory)
        s.open = buffer
        s.used = RecordFormat.regionHeaderSize
        s.flushed = 0
        s.sequences[region] = sequence
        s.dependents[region] = []
      }
      guard let open = s.open else { return .needsRoom }
      let headOffset = regionOffset(open.region) + s.used
      for fragment in dependsOn where s.sequences[region(ofOffset: fragment.offset)] != fragment.sequence {
        return .fragmentsLost
      }
      var registered = Set<Int>()
      for fragment in dependsOn {
        let r = region(ofOffset: fragment.offset)
        if r != open.region && registered.insert(r).inserted {
          s.dependents[r].append(RegionDependent(hash: hash, headOffset: headOffset, weight: weight))
        }
      }
      let header = RecordFormat.RecordHeader(
        kind: kind, payloadLength: bytes.count, hash: hash, payloadCRC: payloadCRC)
      header.write(into: open.memory, at: s.used, sequence: open.sequence, seed: open.seed)
      let start = s.used + RecordFormat.recordHeaderSize
      if bytes.count > 0 {
        UnsafeMutableRawBufferPointer(rebasing: open.memory[start..<(start + bytes.count)]).copyMemory(from: bytes)
      }
      // Zero the alignment padding so the file's bytes do not depend on old memory (the
      // buffer is not zeroed when taken).
      let end = start + bytes.count
      if space > end - s.used {
        UnsafeMutableRawBufferPointer(rebasing: open.memory[end..<(s.used + space)]).initializeMemory(
          as: UInt8.self, repeating: 0)
      }
      s.used += space
      return .appended(RecordLocation(offset: headOffset, sequence: open.sequence))
    }
  }

  /// Moves the open region to the pending set and starts its write. Called under the lock.
  private func seal(_ s: inout State) {
    guard let open = s.open else { return }
    let region = open.region
    let from = s.flushed
    let to = s.used
    s.open = nil
    s.sealedOrder.append(region)
    s.pending[region] = Pending(buffer: open, used: to, task: nil)
    // The records not yet flushed go out, then the end marker, so a scan stops after the
    // last record of this use instead of reading on into the previous use's bytes.
    let previousTail = s.tailWrite
    let task = Task { [self] in
      _ = await previousTail?.value
      await self.writeSealed(open, from: from, to: to, used: to)
    }
    s.pending[region]?.task = task
  }

  private func writeSealed(_ buffer: RegionBuffer, from: Int, to: Int, used: Int) async {
    let offset = regionOffset(buffer.region)
    do throws(CacheError) {
      try await writeBytes(buffer, from: from, to: to, fileOffset: offset, sealed: true)
      state.withLock { s in
        if s.pending[buffer.region]?.buffer === buffer { s.pending[buffer.region] = nil }
      }
    } catch {
      ioFailureHandler.withLock { $0 }?(error)
      // Drop what the region held before anyone can reuse it, then free it unless a
      // reclaim already took it (that reclaim frees it).
      lostRegionHandler.withLock { $0 }?(buffer, used, error)
      state.withLock { s in
        if s.pending[buffer.region]?.buffer === buffer { s.pending[buffer.region] = nil }
        if let index = s.sealedOrder.firstIndex(of: buffer.region) {
          s.sealedOrder.remove(at: index)
          s.sequences[buffer.region] = 0
          s.dependents[buffer.region] = []
          s.free.append(buffer.region)
        }
      }
    }
  }

  /// Writes the buffer's bytes [from, to) (all below `used`, so no appender touches
  /// them) and, when it fits, the end marker after them, from a constant of its own:
  /// the buffer's bytes past `to` may be an append in progress. `sealed`: no append
  /// will touch the buffer again.
  private func writeBytes(
    _ buffer: RegionBuffer, from: Int, to: Int, fileOffset: Int, sealed: Bool
  ) async throws(CacheError) {
    let io = self.io
    let regionSize = self.regionSize
    let markerFits = to + RecordFormat.recordHeaderSize <= regionSize
    guard to > from || markerFits else { return }
    if let block = io.directBlockSize, fileOffset % block == 0, regionSize % block == 0 {
      try await DurableFile.onIOThread(pool: Self.regionWritePool) { () throws(CacheError) in
        try Self.writeBlocks(
          buffer, from: from, to: to, fileOffset: fileOffset, sealed: sealed, block: block, io: io,
          regionSize: regionSize)
      }
      return
    }
    try await DurableFile.onIOThread(pool: Self.regionWritePool) { () throws(CacheError) in
      if to > from {
        try io.write(UnsafeRawBufferPointer(rebasing: buffer.memory[from..<to]), at: fileOffset + from)
      }
      if markerFits { try io.write(RecordFormat.endMarker, at: fileOffset + to) }
    }
  }

  /// The same in whole blocks, for direct writes: from the block holding `from` to the
  /// block holding the end marker. The end marker is zeros, so the rest of the last
  /// block is zeroed: in the buffer itself when the region is sealed (nobody reads or
  /// writes past `to` any more), else in a scratch copy of the last partial block, since
  /// an append may be filling the buffer past `to` right now. Rewriting the block that
  /// holds `from` is harmless: its bytes below `from` never change.
  private static func writeBlocks(
    _ buffer: RegionBuffer, from: Int, to: Int, fileOffset: Int, sealed: Bool, block: Int, io: any DiskIO,
    regionSize: Int
  ) throws(CacheError) {
    let start = from / block * block
    let markerEnd = min(regionSize, to + RecordFormat.recordHeaderSize)
    let end = min(regionSize, (markerEnd + block - 1) / block * block)
    if sealed {
      UnsafeMutableRawBufferPointer(rebasing: buffer.memory[to..<end]).initializeMemory(as: UInt8.self, repeating: 0)
      try io.writeDirect(UnsafeRawBufferPointer(rebasing: buffer.memory[start..<end]), at: fileOffset + start)
      return
    }
    let full = to / block * block
    if full > start {
      try io.writeDirect(UnsafeRawBufferPointer(rebasing: buffer.memory[start..<full]), at: fileOffset + start)
    }
    guard end > full else { return }
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: end - full, alignment: block)
    defer { scratch.deallocate() }
    scratch.initializeMemory(as: UInt8.self, repeating: 0)
    UnsafeMutableRawBufferPointer(rebasing: scratch[0..<(to - full)]).copyMemory(
      from: UnsafeRawBufferPointer(rebasing: buffer.memory[full..<to]))
    try io.writeDirect(UnsafeRawBufferPointer(scratch), at: fileOffset + full)
  }

  /// The durability point: waits for sealed regions being written, writes the open
  /// region's tail, and fsyncs. Objects finished before the call are on disk after it.
  func flush() async throws(CacheError) {
    let (tasks, tail) = state.withLock { s -> ([Task<Void, Never>], Task<Result<Void, CacheError>, Never>?) in
      let tasks = s.pending.values.compactMap(\.task)
      guard let open = s.open else { return (tasks, nil) }
      let (from, used, previous) = (s.flushed, s.used, s.tailWrite)
      let tail = Task { [self] () -> Result<Void, CacheError> in
        _ = await previous?.value
        do throws(CacheError) {
          // Up to `used` only, then the end marker (writeBytes): bytes past `used` may be
          // an append in progress on another thread.
          try await writeBytes(open, from: from, to: used, fileOffset: regionOffset(open.region), sealed: false)
        } catch {
          return .failure(error)
        }
        state.withLock { s in
          if s.open === open { s.flushed = max(s.flushed, used) }
        }
        return .success(())
      }
      s.tailWrite = tail
      return (tasks, tail)
    }
    for task in tasks { await task.value }
    if let tail {
      do throws(CacheError) {
        try await tail.value.get()
      } catch {
        ioFailureHandler.withLock { $0 }?(error)
        throw error
      }
    }
    let io = self.io
    do throws(CacheError) {
      try await DurableFile.onIOThread { () throws(CacheError) in try io.sync() }
    } catch {
      ioFailureHandler.withLock { $0 }?(error)
      throw error
    }
  }

  /// Where a read of `length` bytes at `offset` is served from.
  enum ReadSource {
    case memory(RegionBuffer, available: Int)
    case file(sequence: UInt64)
    case gone
  }

  /// Reads up to `length` bytes at `offset` (fewer at the end of what the region
  /// holds). Returns nil when the region was reclaimed before or during the read.
  func read(
    offset: Int, length: Int, expectedSequence: UInt64? = nil
  ) async throws(CacheError) -> (
    ByteBuffer, sequence: UInt64
  )? {
    let region = region(ofOffset: offset)
    guard region >= 0 && region < regionCount else { return nil }
    let source = state.withLock { s -> ReadSource in
      let sequence = s.sequences[region]
      guard sequence != 0, expectedSequence.map({ $0 == sequence }) ?? true else { return .gone }
      if let open = s.open, open.region == region { return .memory(open, available: s.used) }
      if let pending = s.pending[region] { return .memory(pending.buffer, available: pending.used) }
      return .file(sequence: sequence)
    }
    let within = offset - regionOffset(region)
    switch source {
    case .gone:
      return nil
    case .memory(let buffer, let available):
      let count = max(0, min(length, available - within))
      var out = ByteBuffer()
      out.writeBytes(UnsafeRawBufferPointer(rebasing: buffer.memory[within..<(within + count)]))
      return (out, buffer.sequence)
    case .file(let sequence):
      let count = min(length, regionSize - within)
      let io = self.io
      let bytes: ByteBuffer
      do throws(CacheError) {
        bytes = try await DurableFile.onIOThread { () throws(CacheError) -> ByteBuffer in
          try io.readBuffer(count: count, at: offset)
        }
      } catch {
        ioFailureHandler.withLock { $0 }?(error)
        throw error
      }
      let still = state.withLock { $0.sequences[region] == sequence }
      return still ? (bytes, sequence) : nil
    }
  }

  // MARK: Reclaim

  struct Victim: Sendable {
    var region: Int
    var sequence: UInt64
    var dependents: [RegionDependent]
    var pendingWrite: Task<Void, Never>?
  }

  /// Takes the oldest region out of service (its sequence becomes 0, so readers see it
  /// gone); nil when no region can be reclaimed.
  func beginReclaim() -> Victim? {
    state.withLock { s -> Victim? in
      guard !s.sealedOrder.isEmpty else { return nil }
      let region = s.sealedOrder.removeFirst()
      let victim = Victim(
        region: region, sequence: s.sequences[region], dependents: s.dependents[region],
        pendingWrite: s.pending[region]?.task)
      s.sequences[region] = 0
      s.dependents[region] = []
      return victim
    }
  }

  /// Reads a whole region from the file (for reclaim and recovery), blocking: only on NIO's thread pool.
  func readRegionBlocking(_ region: Int) throws(CacheError) -> ByteBuffer {
    try io.readBuffer(count: regionSize, at: regionOffset(region))
  }

  /// Zeroes a region's header in the file, so a crash before the region's next use is
  /// written cannot bring its old records back (a purge's tombstone may be gone by then).
  func invalidateHeader(_ region: Int) async throws(CacheError) {
    let io = self.io
    let offset = regionOffset(region)
    try await DurableFile.onIOThread { () throws(CacheError) in
      try io.write([UInt8](repeating: 0, count: RecordFormat.regionHeaderSize), at: offset)
    }
  }

  func finishReclaim(_ region: Int) {
    state.withLock { s in
      s.pending[region] = nil
      s.free.append(region)
    }
  }

  /// The region table for a snapshot, taken after a flush: the open region counts as
  /// the newest holding data (it is all on disk by then).
  func snapshotState() -> (nextSequence: UInt64, sequences: [UInt64], order: [Int], dependents: [[RegionDependent]]) {
    state.withLock { s in
      var order = s.sealedOrder
      if let open = s.open { order.append(open.region) }
      return (s.nextSequence, s.sequences, order, s.dependents)
    }
  }

  /// Stops the writer: waits for region writes in flight.
  func drain() async {
    let (tasks, tail) = state.withLock { ($0.pending.values.compactMap(\.task), $0.tailWrite) }
    _ = await tail?.value
    for task in tasks { await task.value }
  }
}
