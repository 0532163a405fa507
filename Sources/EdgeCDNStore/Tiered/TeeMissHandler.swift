import CoreMetrics
import Logging
public import NIOCore
import Synchronization

/// Writes one object into RAM and disk at once, chunk by chunk, without holding the body.
///
/// A tier whose write fails is abandoned (aborted, logged, counted) and the write
/// goes on into the other: the client's response only fails when no tier is left to
/// take it. An object that grows past RAM's maximum object size leaves RAM the same
/// way (not counted as a failure), since the size is only known as the bytes come.
public final class TeeMissHandler<Memory: Storage, Disk: Storage>: MissHandler {
  private enum Phase {
    case open
    case eofWritten
    case finished
    case aborted
  }

  private struct State {
    var memory: Memory.Miss?
    var disk: Disk.Miss?
    var phase = Phase.open
    var bodyBytes = 0
    var lastError: CacheError?
  }

  let key: CacheKey
  private let state: Mutex<State>
  private let memoryLimit: Int?
  private let metrics: TieredMetrics
  private let logger: Logger
  private let onFinish: (@Sendable (CacheKey) -> Void)?
  /// Set for a client write: told once when the write ends, however it ends.
  private let writes: WriteStamps?
  private let ended = Atomic<Bool>(false)
  /// Set for a client write into RAM and disk: told how disk's write ends, so that
  /// readers of RAM's copy go on from disk if RAM's write is dropped.
  private let handoff: DiskHandoff?
  public let streamingWriteTag: StreamingWriteTag?

  init(
    key: CacheKey, memory: Memory.Miss?, disk: Disk.Miss?, memoryLimit: Int?, metrics: TieredMetrics, logger: Logger,
    onFinish: (@Sendable (CacheKey) -> Void)?, writes: WriteStamps? = nil, handoff: DiskHandoff? = nil
  ) {
    self.key = key
    self.state = Mutex(State(memory: memory, disk: disk))
    // Skipping RAM by size only makes sense when another tier takes the object.
    self.memoryLimit = disk == nil ? nil : memoryLimit
    self.metrics = metrics
    self.logger = logger
    self.onFinish = onFinish
    self.writes = writes
    self.handoff = handoff
    self.streamingWriteTag = memory?.streamingWriteTag
  }

  deinit { endWrite() }

  /// Tells the write stamps, once, that this client write can commit no more, and
  /// readers waiting for disk that it did not commit (if it had, they know already).
  private func endWrite() {
    handoff?.resolve(.failed)
    guard let writes, !ended.exchange(true, ordering: .relaxed) else { return }
    writes.writeEnded(key.combinedHash)
  }

  /// Which tiers still take the write (for tests and logs).
  var activeTiers: (memory: Bool, disk: Bool) { state.withLock { ($0.memory != nil, $0.disk != nil) } }

  public func writeBody(_ data: ByteBuffer, eof: Bool) async throws(CacheError) {
    let size = data.readableBytes
    let step = state.withLock { state -> Result<(Memory.Miss?, Disk.Miss?, dropMemory: Memory.Miss?), CacheError> in
      guard state.phase == .open else {
        return .failure(.invalidState(key: key.combinedHash, reason: "writeBody after eof, finish or abort"))
      }
      state.bodyBytes += size
      var dropped: Memory.Miss?
      if let limit = memoryLimit, state.bodyBytes > limit, state.memory != nil {
        dropped = state.memory
        state.memory = nil
      }
      if eof { state.phase = .eofWritten }
      return .success((state.memory, state.disk, dropped))
    }
    let (memory, disk, tooLarge) = try step.get()
    if let tooLarge {
      await tooLarge.abort(reason: "object larger than the RAM tier's maximum object size; kept on disk only")
    }
    if let memory {
      do { try await memory.writeBody(data, eof: eof) } catch { await drop(memory: memory, error, while: "write") }
    }
    if let disk {
      do { try await disk.writeBody(data, eof: eof) } catch { await drop(disk: disk, error, while: "write") }
    }
    try throwIfNoTierLeft()
  }

  public func finish() async throws(CacheError) -> MissFinish {
    let handlers = state.withLock { state -> (Memory.Miss?, Disk.Miss?)? in
      guard state.phase == .open || state.phase == .eofWritten else { return nil }
      state.phase = .finished
      return (state.memory, state.disk)
    }
    guard let (memory, disk) = handlers else {
      throw .invalidState(key: key.combinedHash, reason: "finish after finish or abort")
    }
    defer { endWrite() }
    var result: MissFinish?
    // Disk first: once RAM commits, lookups stop at RAM, so RAM last keeps the two
    // tiers agreeing on the newest write when writers of one key race.
    if let disk {
      do {
        result = try await disk.finish()
        handoff?.resolve(.committed)
      } catch {
        await drop(disk: disk, error, while: "finish")
      }
    }
    if let memory {
      do { result = try await memory.finish() } catch { await drop(memory: memory, error, while: "finish") }
    }
    guard let result else {
      let error = state.withLock { $0.lastError }
      throw error ?? .invalidState(key: key.combinedHash, reason: "no tier took the write")
    }
    onFinish?(key)
    return result
  }

  public func abort(reason: String) async {
    let handlers = state.withLock { state -> (Memory.Miss?, Disk.Miss?)? in
      guard state.phase == .open || state.phase == .eofWritten else { return nil }
      state.phase = .aborted
      defer {
        state.memory = nil
        state.disk = nil
      }
      return (state.memory, state.disk)
    }
    guard let (memory, disk) = handlers else { return }
    await memory?.abort(reason: reason)
    await disk?.abort(reason: reason)
    endWrite()
  }

  private func drop(memory: Memory.Miss, _ error: CacheError, while operation: String) async {
    recordDrop(of: "RAM", counter: metrics.memoryWriteFailures, error, while: operation) { $0.memory = nil }
    await memory.abort(reason: "\(operation) failed: \(error)")
  }

  private func drop(disk: Disk.Miss, _ error: CacheError, while operation: String) async {
    recordDrop(of: "disk", counter: metrics.diskWriteFailures, error, while: operation) { $0.disk = nil }
    handoff?.resolve(.failed)
    await disk.abort(reason: "\(operation) failed: \(error)")
  }

  /// What dropping either tier's write does besides aborting it: forget it, keep the
  /// error (reported if no tier is left), count and log.
  private func recordDrop(
    of tier: String, counter: Counter, _ error: CacheError, while operation: String, forget: (inout State) -> Void
  ) {
    state.withLock {
      forget(&$0)
      $0.lastError = error
    }
    counter.increment()
    logger.warning(
      "\(tier) tier \(operation) failed; the write continues in the other tiers",
      metadata: ["key": "\(key.combinedHash.hex)", "error": "\(error)"])
  }

  private func throwIfNoTierLeft() throws(CacheError) {
    let failure = state.withLock { state -> CacheError? in
      guard state.memory == nil, state.disk == nil else { return nil }
      state.phase = .aborted
      return state.lastError ?? .invalidState(key: key.combinedHash, reason: "no tier took the write")
    }
    if let failure { throw failure }
  }
}
