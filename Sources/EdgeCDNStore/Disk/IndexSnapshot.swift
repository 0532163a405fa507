#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The index and region table written at a clean close, so the next open can skip
/// replaying the log. Trusted only when its CRC, the file's nonce and geometry, and the
/// sequence in every region header on disk all match; it is deleted as soon as it is
/// read, so a crash later falls back to the replay, which is always correct.
///
///     magic "EDSN" u32 | version u32 | nonce u64 | region size u64 | region count u64 | next sequence u64
///     sequences: region count × u64 | order: count u64 + u64 each
///     dependents: per region, count u64 + (hash high, hash low, head offset, weight) u64 each
///     index: shard count u64, per shard: slot count u64 + slots u64
///     crc32c u32 of everything before
struct IndexSnapshot {
  static let magic: UInt32 = 0x4E53_4445  // "EDSN"
  /// 2: dependents carry their head's weight (a version 1 snapshot is ignored: the log is replayed).
  static let version: UInt32 = 2

  var nextSequence: UInt64
  var sequences: [UInt64]
  var order: [Int]
  var dependents: [[RegionDependent]]
  var tables: [ContiguousArray<UInt64>]

  static func path(for io: any DiskIO) -> String { io.path + ".index" }

  /// Deletes the snapshot and syncs its folder, so the deletion survives a crash.
  static func remove(path: String) {
    unlink(path)
    let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    let fd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    fsync(fd)
    close(fd)
  }

  func encoded(nonce: UInt64, regionSize: Int) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(64 + sequences.count * 8 + tables.reduce(0) { $0 + 8 + $1.count * 8 })
    func put<T: FixedWidthInteger>(_ value: T) {
      withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }
    put(Self.magic)
    put(Self.version)
    put(nonce)
    put(UInt64(regionSize))
    put(UInt64(sequences.count))
    put(nextSequence)
    for sequence in sequences { put(sequence) }
    put(UInt64(order.count))
    for region in order { put(UInt64(region)) }
    for list in dependents {
      put(UInt64(list.count))
      for dependent in list {
        put(dependent.hash.high)
        put(dependent.hash.low)
        put(UInt64(dependent.headOffset))
        put(UInt64(dependent.weight))
      }
    }
    put(UInt64(tables.count))
    for table in tables {
      put(UInt64(table.count))
      for word in table { put(word) }
    }
    put(out.withUnsafeBytes { CRC32C.checksum($0) })
    return out
  }

  /// nil unless the bytes are a whole, checked snapshot of this file and geometry.
  init?(_ bytes: [UInt8], nonce: UInt64, regionSize: Int, regionCount: Int) {
    guard bytes.count >= 44 else { return nil }
    let valid = bytes.withUnsafeBytes { raw -> Bool in
      CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 4)]))
        == ByteReader(raw).u32(raw.count - 4)
    }
    guard valid else { return nil }
    var cursor = 0
    let end = bytes.count - 4
    func u64() -> UInt64? {
      guard cursor + 8 <= end else { return nil }
      defer { cursor += 8 }
      return bytes.withUnsafeBytes { ByteReader($0).u64(cursor) }
    }
    func count(_ limit: Int) -> Int? {
      guard let value = u64(), value <= UInt64(limit) else { return nil }
      return Int(value)
    }
    let head = bytes.withUnsafeBytes { (ByteReader($0).u32(0), ByteReader($0).u32(4)) }
    cursor = 8
    guard head.0 == Self.magic, head.1 == Self.version, u64() == nonce, u64() == UInt64(regionSize),
      u64() == UInt64(regionCount), let nextSequence = u64()
    else { return nil }
    var sequences: [UInt64] = []
    for _ in 0..<regionCount {
      guard let sequence = u64() else { return nil }
      sequences.append(sequence)
    }
    guard let orderCount = count(regionCount) else { return nil }
    var order: [Int] = []
    for _ in 0..<orderCount {
      guard let region = count(regionCount - 1) else { return nil }
      order.append(region)
    }
    var dependents: [[RegionDependent]] = []
    for _ in 0..<regionCount {
      guard let n = count(end / 32) else { return nil }
      var list: [RegionDependent] = []
      for _ in 0..<n {
        guard let high = u64(), let low = u64(), let offset = count(Int.max), let weight = count(Int.max) else {
          return nil
        }
        list.append(RegionDependent(hash: CacheHash(high: high, low: low), headOffset: offset, weight: weight))
      }
      dependents.append(list)
    }
    guard let shardCount = count(1 << 16) else { return nil }
    var tables: [ContiguousArray<UInt64>] = []
    for _ in 0..<shardCount {
      guard let slots = count(end / 8), slots > 0 else { return nil }
      var table = ContiguousArray<UInt64>()
      table.reserveCapacity(slots)
      for _ in 0..<slots {
        guard let word = u64() else { return nil }
        table.append(word)
      }
      tables.append(table)
    }
    guard cursor == end else { return nil }
    self.nextSequence = nextSequence
    self.sequences = sequences
    self.order = order
    self.dependents = dependents
    self.tables = tables
  }

  init(
    nextSequence: UInt64, sequences: [UInt64], order: [Int], dependents: [[RegionDependent]],
    tables: [ContiguousArray<UInt64>]
  ) {
    self.nextSequence = nextSequence
    self.sequences = sequences
    self.order = order
    self.dependents = dependents
    self.tables = tables
  }
}
