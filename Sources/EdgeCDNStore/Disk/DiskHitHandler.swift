public import NIOCore

/// Reads one object from the disk tier, a bounded piece at a time.
///
/// The head (meta, fragment table, block CRCs, the small tail of the body) was read
/// and checked at lookup. Body bytes are read per fragment, at most `maxReadSize` per
/// call, and only the 16 KiB check blocks that cover the wanted range, so a range
/// request reads what it needs and RAM per reader stays bounded whatever the object
/// size. Each block is checked against its CRC before any byte of it is returned: a
/// damaged block ends the read with `corruptBody` and purges the object.
public struct DiskHitHandler: HitHandler {
  static let maxReadSize = 256 << 10

  let store: DiskStore
  let head: HeadRecord
  public let evictionWeight: Int
  /// Body offset where each fragment starts, and the index of its first block CRC.
  private let starts: [Int]
  private let blockBases: [Int]
  private var position = 0
  private var end: Int
  private var seeked = false

  init(store: DiskStore, head: HeadRecord, weight: Int) {
    self.store = store
    self.head = head
    self.evictionWeight = weight
    var starts: [Int] = []
    var bases: [Int] = []
    starts.reserveCapacity(head.fragments.count)
    bases.reserveCapacity(head.fragments.count)
    var start = 0
    var base = 0
    for fragment in head.fragments {
      starts.append(start)
      bases.append(base)
      start += fragment.length
      base += (fragment.length + RecordFormat.checkBlockSize - 1) / RecordFormat.checkBlockSize
    }
    self.starts = starts
    self.blockBases = bases
    self.end = head.bodyLength
  }

  public mutating func readBody() async throws(CacheError) -> ByteBuffer? {
    let limit = min(end, head.bodyLength)
    guard position < limit else { return nil }
    let fragmented = (starts.last ?? 0) + (head.fragments.last?.length ?? 0)
    if position >= fragmented {
      let from = position - fragmented
      let count = min(limit - position, Self.maxReadSize)
      position += count
      return head.inline.getSlice(at: head.inline.readerIndex + from, length: count) ?? ByteBuffer()
    }
    var low = 0
    var high = starts.count - 1
    while low < high {
      let mid = (low + high + 1) / 2
      if starts[mid] <= position { low = mid } else { high = mid - 1 }
    }
    let i = low
    let fragment = head.fragments[i]
    let within = position - starts[i]
    let wantEnd = min(limit - starts[i], fragment.length, within + Self.maxReadSize)
    let block = RecordFormat.checkBlockSize
    let blockStart = within / block * block
    let blockEnd = min(fragment.length, (wantEnd + block - 1) / block * block)
    let read = try await store.readRecovering(
      offset: fragment.offset + RecordFormat.recordHeaderSize + blockStart, length: blockEnd - blockStart,
      expectedSequence: fragment.sequence)
    guard let (bytes, _) = read else {
      throw .unavailable(
        tier: DiskStore.tierName, reason: "object \(head.hash.hex) was evicted (its region reclaimed) during the read")
    }
    guard bytes.readableBytes == blockEnd - blockStart else {
      throw corrupt("fragment \(i) read short: \(bytes.readableBytes) of \(blockEnd - blockStart) bytes")
    }
    let firstBlock = blockBases[i] + blockStart / block
    let valid = bytes.withUnsafeReadableBytes { raw -> Bool in
      var k = 0
      var offset = 0
      while offset < raw.count {
        let size = min(block, raw.count - offset)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + size)]))
        guard firstBlock + k < head.blockCRCs.count, crc == head.blockCRCs[firstBlock + k] else { return false }
        k += 1
        offset += size
      }
      return true
    }
    guard valid else { throw corrupt("fragment \(i) fails its block CRC") }
    position = starts[i] + wantEnd
    return bytes.getSlice(at: bytes.readerIndex + within - blockStart, length: wantEnd - within) ?? ByteBuffer()
  }

  private func corrupt(_ reason: String) -> CacheError {
    store.dropCorrupt(head.hash, at: head.offset, weight: evictionWeight, reason: reason)
    return .corruptBody(key: head.hash, reason: reason)
  }

  public mutating func finish() async throws(CacheError) {}

  public var canSeek: Bool { true }

  public mutating func seek(start: Int, end: Int?) async throws(CacheError) {
    guard start >= 0, start < head.bodyLength, end.map({ $0 > start }) ?? true else {
      throw .invalidRange(key: head.hash, start: start, end: end, bodySize: head.bodyLength)
    }
    position = start
    self.end = min(end ?? head.bodyLength, head.bodyLength)
    seeked = true
  }

  /// A ranged read is not a full hit: it should not promote the object as one would.
  public var shouldCountAccess: Bool { !seeked }
}
