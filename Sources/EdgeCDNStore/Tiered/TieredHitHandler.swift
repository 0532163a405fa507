import CoreMetrics
public import NIOCore
import Synchronization

/// Reads an object from whichever tier had it, with no existential: a RAM hit costs
/// one branch per call over the RAM handler itself.
///
/// Why a struct of optionals and not an enum with payloads: a mutating call on an
/// enum payload copies the handler out and back (a retain and release of its object
/// per chunk, measured at 50% of a 1 KiB RAM hit), while optional chaining on a stored
/// property mutates it in place.
///
/// Why the optionals are spelled `Optional<…>`: a `T?` stored `var` is set to nil
/// before the initialiser runs, so assigning it there destroys that nil first, which
/// for a generic payload is a call through its type metadata (seen in the disassembly
/// of the bench, on every RAM hit).
///
/// Why it holds the RAM handler alone, not the RAM tier's `CacheHit` with its meta
/// emptied: the tiered hit is then 184 bytes instead of 280 (168 for the RAM hit
/// alone), moved a few times on its way out of `lookup` and destroyed through one
/// level of generic value witnesses fewer. The handler arrives by itself from
/// `Storage.lookupParts`, so it moves in without a copy.
public struct TieredHitHandler<Memory: Storage, Disk: Storage>: HitHandler {
  @usableFromInline
  enum Tier: Sendable {
    case memory
    case lower
  }

  @usableFromInline let tier: Tier
  @usableFromInline var memory: Optional<Memory.Hit>
  @usableFromInline var lowerRead: Optional<TieredLowerRead<Memory, Disk>>

  /// A read of RAM (the handler is taken `consuming`, so it moves in).
  @inlinable
  public init(memory handler: consuming Memory.Hit) {
    self.tier = .memory
    self.memory = .some(handler)
    self.lowerRead = .none
  }

  /// A disk or shared-tier read, possibly copying into the tiers above as it goes.
  init(lower read: TieredLowerRead<Memory, Disk>) {
    self.tier = .lower
    self.memory = .none
    self.lowerRead = .some(read)
  }

  @inlinable
  public mutating func readBody() async throws(CacheError) -> ByteBuffer? {
    switch tier {
    case .memory: try await memory?.readBody()
    case .lower: try await lowerRead?.readBody()
    }
  }

  @inlinable
  public mutating func finish() async throws(CacheError) {
    switch tier {
    case .memory: try await memory?.finish()
    case .lower: try await lowerRead?.finish()
    }
  }

  /// RAM only: a lower tier's read may be copying into the tiers above as it goes.
  @inlinable
  public mutating func takeFileBody() -> FileBody? {
    switch tier {
    case .memory: memory?.takeFileBody()
    case .lower: nil
    }
  }

  public var canSeek: Bool {
    switch tier {
    case .memory: memory?.canSeek ?? false
    case .lower: lowerRead?.canSeek ?? false
    }
  }

  public var canSeekMultipart: Bool {
    switch tier {
    case .memory: memory?.canSeekMultipart ?? false
    case .lower: lowerRead?.canSeek ?? false
    }
  }

  @inlinable
  public mutating func seek(start: Int, end: Int?) async throws(CacheError) {
    switch tier {
    case .memory: try await memory?.seek(start: start, end: end)
    case .lower: try await lowerRead?.seek(start: start, end: end, multipart: false)
    }
  }

  @inlinable
  public mutating func seekMultipart(start: Int, end: Int?) async throws(CacheError) {
    switch tier {
    case .memory: try await memory?.seekMultipart(start: start, end: end)
    case .lower: try await lowerRead?.seek(start: start, end: end, multipart: true)
    }
  }

  public var shouldCountAccess: Bool {
    switch tier {
    case .memory: memory?.shouldCountAccess ?? true
    case .lower: lowerRead?.shouldCountAccess ?? true
    }
  }

  public var evictionWeight: Int {
    switch tier {
    case .memory: memory?.evictionWeight ?? 0
    case .lower: lowerRead?.evictionWeight ?? 0
    }
  }
}

/// A read from disk or from the shared tier, copying the body into the tiers above
/// (a promotion into RAM, or a fill of RAM and disk from the shared tier) as the
/// reader pulls it: the fill commits at the body's end and is abandoned on an error,
/// an early finish or a seek; a fill that ends after a purge or meta update of any
/// key is committed and removed at once (readers following it still get the body).
///
/// A failing fill never fails the read: the tee drops the tier and counts it.
///
/// An actor, so that the hit handler holds one reference rather than this state
/// inline: the RAM hit path then moves and destroys a small handler (measured: the
/// inline state cost a RAM hit about 15%). A lower read pays an actor hop per call,
/// small beside a disk read or a network round trip.
public actor TieredLowerRead<Memory: Storage, Disk: Storage> {
  enum Source: Sendable {
    case disk(Disk.Hit)
    /// The client's own stream (not any tier's), so that a dropped reader can end it
    /// without waiting (`close`, in `deinit`).
    case shared(TimedBodyStream, size: Int?)
    /// A client write in progress, read from RAM and, if it leaves RAM, from disk.
    case followed(FollowedWrite<Memory, Disk>)
  }

  var source: Source
  var fill: TeeMissHandler<Memory, Disk>?
  let core: TieredCore<Memory, Disk>
  let key: CacheKey
  /// The store's purge epoch when the read began; a change abandons the fill.
  let epoch: UInt64
  /// The key's write stamp when the read began (see WriteStamps).
  let stamp: UInt64
  let isPromotion: Bool
  nonisolated let canSeek: Bool
  nonisolated let evictionWeight: Int
  private let countsAccess: Atomic<Bool>

  init(
    source: Source, fill: TeeMissHandler<Memory, Disk>?, core: TieredCore<Memory, Disk>, key: CacheKey, epoch: UInt64,
    stamp: UInt64, isPromotion: Bool
  ) {
    self.source = source
    self.fill = fill
    self.core = core
    self.key = key
    self.epoch = epoch
    self.stamp = stamp
    self.isPromotion = isPromotion
    switch source {
    case .disk(let handler):
      canSeek = handler.canSeek
      evictionWeight = handler.evictionWeight
      countsAccess = Atomic(handler.shouldCountAccess)
    case .shared(_, let size):
      canSeek = false
      evictionWeight = size ?? 0
      countsAccess = Atomic(true)
    case .followed(let read):
      canSeek = read.canSeek
      evictionWeight = read.evictionWeight
      countsAccess = Atomic(read.shouldCountAccess)
    }
  }

  @usableFromInline
  func readBody() async throws(CacheError) -> ByteBuffer? {
    let chunk: ByteBuffer?
    do {
      switch source {
      case .disk(var handler):
        defer { source = .disk(handler) }
        chunk = try await handler.readBody()
      case .shared(let stream, _):
        chunk = try await stream.next()
      case .followed(var read):
        defer { source = .followed(read) }
        chunk = try await read.readBody()
      }
    } catch {
      await abandonFill("the source failed: \(error)")
      throw error
    }
    guard let fill else { return chunk }
    if let chunk {
      do { try await fill.writeBody(chunk, eof: false) } catch { self.fill = nil }
    } else {
      self.fill = nil
      await complete(fill)
    }
    return chunk
  }

  private func complete(_ fill: TeeMissHandler<Memory, Disk>) async {
    let tiers = fill.activeTiers
    do {
      try await fill.writeBody(ByteBuffer(), eof: true)
      _ = try await fill.finish()
    } catch {
      // Counted and logged by the tee; the reader has its body.
      return
    }
    guard core.epoch == epoch, core.writes.copyMayStay(key.combinedHash, since: stamp) else {
      // Purged, updated or written by a client meanwhile: this copy may be older than
      // what the tiers hold now. It is committed first and removed after, rather than
      // aborted, because readers may be following it as a partial write and must get
      // the whole body, as readers that began before a purge do.
      await core.discardCopy(of: key, memory: tiers.memory, disk: tiers.disk)
      return
    }
    if isPromotion { core.metrics.promotions.increment() } else { core.metrics.sharedFills.increment() }
  }

  private func abandonFill(_ reason: String) async {
    guard let fill else { return }
    self.fill = nil
    await fill.abort(reason: reason)
  }

  @usableFromInline
  func finish() async throws(CacheError) {
    await abandonFill("the reader finished before the end of the body")
    switch source {
    case .disk(var handler):
      defer { source = .disk(handler) }
      try await handler.finish()
    case .shared(let stream, _):
      await stream.cancel()
    case .followed(var read):
      defer { source = .followed(read) }
      try await read.finish()
    }
  }

  @usableFromInline
  func seek(start: Int, end: Int?, multipart: Bool) async throws(CacheError) {
    await abandonFill("a range read does not copy the whole body")
    switch source {
    case .disk(var handler):
      defer { source = .disk(handler) }
      if multipart {
        try await handler.seekMultipart(start: start, end: end)
      } else {
        try await handler.seek(start: start, end: end)
      }
      countsAccess.store(handler.shouldCountAccess, ordering: .relaxed)
    case .shared:
      throw .invalidState(key: key.combinedHash, reason: "an object streamed from the shared tier cannot seek")
    case .followed(var read):
      defer { source = .followed(read) }
      try await read.seek(start: start, end: end, multipart: multipart)
      countsAccess.store(read.shouldCountAccess, ordering: .relaxed)
    }
  }

  nonisolated var shouldCountAccess: Bool { countsAccess.load(ordering: .relaxed) }

  /// A reader dropped without `finish` still releases a shared body's read-ahead.
  deinit {
    if case .shared(let stream, _) = source { stream.close() }
  }
}
