public import NIOCore

/// Reads one object from the disk tier, a bounded piece at a time: a committed object,
/// or a write in progress that a tag found (`DiskStore.lookupStreamingWrite`), which it
/// follows a fragment at a time as the writer appends them (`DiskWriteProgress`).
///
/// The head (meta, fragment table, block CRCs, the small tail of the body) was read
/// and checked at lookup. Body bytes are read per fragment, at most `maxReadSize` per
/// call, and only the 16 KiB check blocks that cover the wanted range, so a range
/// request reads what it needs and RAM per reader stays bounded whatever the object
/// size. Each block is checked against its CRC before any byte of it is returned: a
/// damaged block ends the read with `corruptBody` and purges the object.
public struct DiskHitHandler: HitHandler {
  static let maxReadSize = 256 << 10

  /// What is read: a committed object, named by its head record (for dropping a damaged
  /// object from the index, and for telling one commit of a key from another), or a
  /// write in progress, which the index does not hold yet.
  enum Source {
    case committed(head: RecordLocation)
    case following(DiskWriteProgress)
  }

  let store: DiskStore
  let hash: CacheHash
  let source: Source
  public let evictionWeight: Int
  private var layout: DiskBodyLayout
  private var tail: DiskBodyLayout.Tail?
  /// Nil while a followed write has not reached its end.
  private var bodyLength: Int?
  /// The followed write's state this reader last looked at, and its failure if it
  /// failed: it ends the read only where bytes are missing (a failed commit does not
  /// take back bytes the writer had already given).
  private var seenVersion = -1
  private var failure: CacheError?
  private var position = 0
  private var end: Int?
  private var seeked = false

  init(store: DiskStore, head: HeadRecord, weight: Int) {
    self.store = store
    self.hash = head.hash
    self.source = .committed(head: RecordLocation(offset: head.offset, sequence: head.sequence))
    self.evictionWeight = weight
    let layout = DiskBodyLayout(fragments: head.fragments, blockCRCs: head.blockCRCs)
    self.layout = layout
    self.tail = DiskBodyLayout.Tail(start: layout.fragmented, bytes: head.inline)
    self.bodyLength = head.bodyLength
  }

  /// A reader of the write in progress that `progress` describes.
  init(store: DiskStore, hash: CacheHash, following progress: DiskWriteProgress, weight: Int) {
    self.store = store
    self.hash = hash
    self.source = .following(progress)
    self.evictionWeight = weight
    self.layout = DiskBodyLayout()
    self.tail = nil
    self.bodyLength = nil
  }

  /// The committed head this handler reads; nil for a write in progress.
  var committedHead: RecordLocation? {
    if case .committed(let head) = source { return head }
    return nil
  }

  public mutating func readBody() async throws(CacheError) -> ByteBuffer? {
    while true {
      if let bodyLength {
        if position > bodyLength {
          throw .invalidRange(key: hash, start: position, end: end, bodySize: bodyLength)
        }
        if position >= min(end ?? bodyLength, bodyLength) { return nil }
      } else if let end, position >= end {
        return nil
      }
      let limit = min(end ?? .max, bodyLength ?? .max)
      if position < layout.fragmented {
        return try await readFragments(upTo: limit)
      }
      if let tail, position >= tail.start {
        let count = min(limit - position, Self.maxReadSize)
        defer { position += count }
        return tail.bytes.getSlice(at: tail.bytes.readerIndex + position - tail.start, length: count) ?? ByteBuffer()
      }
      // A followed write without these bytes yet: wait for its next fragment or its end.
      guard case .following(let following) = source else {
        throw corrupt("no fragment holds body offset \(position) of \(bodyLength ?? -1)")
      }
      if let failure { throw failure }
      if seenVersion >= 0 { await following.changed(after: seenVersion) }
      try Task.checkCancellation(key: hash)
      let snapshot = following.snapshot
      failure = snapshot.failure
      seenVersion = snapshot.version
      layout = snapshot.layout
      tail = snapshot.tail
      bodyLength = snapshot.bodyLength
    }
  }

  /// The wanted bytes from `position` in the fragment holding it, read and checked.
  private mutating func readFragments(upTo limit: Int) async throws(CacheError) -> ByteBuffer {
    let i = layout.fragmentIndex(at: position)
    let fragment = layout.fragments[i]
    let start = layout.starts[i]
    let within = position - start
    let wantEnd = min(limit - start, fragment.length, within + Self.maxReadSize)
    let block = RecordFormat.checkBlockSize
    let blockStart = within / block * block
    let blockEnd = min(fragment.length, (wantEnd + block - 1) / block * block)
    let read = try await store.readRecovering(
      offset: fragment.offset + RecordFormat.recordHeaderSize + blockStart, length: blockEnd - blockStart,
      expectedSequence: fragment.sequence)
    guard let (bytes, _) = read else {
      throw .unavailable(
        tier: DiskStore.tierName, reason: "object \(hash.hex) was evicted (its region reclaimed) during the read")
    }
    guard bytes.readableBytes == blockEnd - blockStart else {
      throw corrupt("fragment \(i) read short: \(bytes.readableBytes) of \(blockEnd - blockStart) bytes")
    }
    let firstBlock = layout.blockBases[i] + blockStart / block
    let crcs = layout.blockCRCs
    let valid = bytes.withUnsafeReadableBytes { raw -> Bool in
      var k = 0
      var offset = 0
      while offset < raw.count {
        let size = min(block, raw.count - offset)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + size)]))
        guard firstBlock + k < crcs.count, crc == crcs[firstBlock + k] else { return false }
        k += 1
        offset += size
      }
      return true
    }
    guard valid else { throw corrupt("fragment \(i) fails its block CRC") }
    position = start + wantEnd
    return bytes.getSlice(at: bytes.readerIndex + within - blockStart, length: wantEnd - within) ?? ByteBuffer()
  }

  private func corrupt(_ reason: String) -> CacheError {
    // A write in progress is not in the index yet: nothing there is this reader's to drop.
    if let head = committedHead { store.dropCorrupt(hash, at: head.offset, weight: evictionWeight, reason: reason) }
    return .corruptBody(key: hash, reason: reason)
  }

  public mutating func finish() async throws(CacheError) {}

  public var canSeek: Bool { true }

  /// On a followed write whose end is not known yet, a range is checked against the body
  /// once it is: reading then fails with `invalidRange` if it starts past the end.
  public mutating func seek(start: Int, end: Int?) async throws(CacheError) {
    guard start >= 0, end.map({ $0 > start }) ?? true, bodyLength.map({ start < $0 }) ?? true else {
      throw .invalidRange(key: hash, start: start, end: end, bodySize: bodyLength ?? -1)
    }
    position = start
    self.end = bodyLength.map { min(end ?? $0, $0) } ?? end
    seeked = true
  }

  /// A ranged read, or a read of a write in progress, is not a full hit: it should not
  /// promote the object as one would.
  public var shouldCountAccess: Bool { !seeked && committedHead != nil }
}

extension Task where Success == Never, Failure == Never {
  /// `checkCancellation` with the store's typed error.
  static func checkCancellation(key: CacheHash) throws(CacheError) {
    if isCancelled { throw .cancelled(key: key) }
  }
}
