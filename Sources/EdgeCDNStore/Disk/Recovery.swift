import NIOCore

/// What the startup scan found: which regions hold data, in which order.
struct RecoveredRegions: Sendable {
  /// Regions with a valid header, oldest sequence first.
  var order: [Int]
  var free: [Int]
  var sequences: [UInt64]
  var nextSequence: UInt64
  var dependents: [[RegionDependent]]

  static func empty(regionCount: Int) -> RecoveredRegions {
    RecoveredRegions(
      order: [], free: Array((0..<regionCount).reversed()), sequences: Array(repeating: 0, count: regionCount),
      nextSequence: 1, dependents: Array(repeating: [], count: regionCount))
  }
}

/// Counts from a startup scan, for logs and the bench.
public struct RecoveryReport: Sendable, Hashable {
  public var regionsScanned = 0
  public var objectsIndexed = 0
  public var tombstones = 0
  /// Records that failed a check (torn write, garbage): the scan of that region stopped there.
  public var corruptRecords = 0
  /// Heads whose fragments were reclaimed or never written.
  public var incompleteObjects = 0
  public var bytesRead = 0
}

/// Rebuilds the index by replaying the log: regions in sequence order, records in
/// order within each, a later head of a key replacing an earlier one and a tombstone
/// removing it. A region's scan stops at the first record that fails a check (a torn
/// tail after a crash); what comes before it is trusted because every header and
/// every head payload carries its CRC.
enum Recovery {
  static func scan(
    writer: RegionWriter, regionCount: Int, index: DiskIndex
  ) async throws(CacheError) -> (RecoveredRegions, RecoveryReport) {
    var report = RecoveryReport()
    let io = writer.io
    let nonce = writer.nonce
    let headerOffsets = (0..<regionCount).map { writer.regionOffset($0) }
    let sequences: [UInt64] = try await DurableFile.onIOThread { () throws(CacheError) -> [UInt64] in
      var found = [UInt64](repeating: 0, count: regionCount)
      for region in 0..<regionCount {
        let header = try io.read(count: RecordFormat.regionHeaderSize, at: headerOffsets[region])
        guard header.count == RecordFormat.regionHeaderSize else { continue }
        found[region] =
          header.withUnsafeBytes { RecordFormat.readRegionHeader($0, nonce: nonce) } ?? 0
      }
      return found
    }
    var recovered = RecoveredRegions.empty(regionCount: regionCount)
    recovered.sequences = sequences
    recovered.order = (0..<regionCount).filter { sequences[$0] != 0 }.sorted { sequences[$0] < sequences[$1] }
    recovered.free = (0..<regionCount).filter { sequences[$0] == 0 }.reversed()
    recovered.nextSequence = (sequences.max() ?? 0) + 1

    let buffer = RegionBuffer(region: 0, sequence: 0, size: writer.regionSize)
    for region in recovered.order {
      let count = try await writer.readRegion(region, into: buffer)
      report.regionsScanned += 1
      report.bytesRead += count
      scanRegion(
        UnsafeRawBufferPointer(rebasing: buffer.memory[0..<count]), region: region, sequence: sequences[region],
        writer: writer, index: index, recovered: &recovered, report: &report)
    }
    return (recovered, report)
  }

  private static func scanRegion(
    _ bytes: UnsafeRawBufferPointer, region: Int, sequence: UInt64, writer: RegionWriter, index: DiskIndex,
    recovered: inout RecoveredRegions, report: inout RecoveryReport
  ) {
    let base = writer.regionOffset(region)
    let nonce = writer.nonce
    forEachRecord(in: bytes, sequence: sequence, nonce: nonce) { header, within, payload in
      let offset = base + within
      switch header.kind {
      case .fragment:
        return true
      case .tombstone:
        guard CRC32C.checksum(payload) == header.payloadCRC else { return false }
        report.tombstones += 1
        index.remove(header.hash)
        return true
      case .head:
        guard CRC32C.checksum(payload) == header.payloadCRC,
          let head = HeadRecord(
            payload: ByteBuffer(bytes: payload), hash: header.hash, offset: offset, sequence: sequence)
        else { return false }
        // Every fragment must still be the one written with this head.
        let complete = head.fragments.allSatisfy { fragment in
          let r = writer.region(ofOffset: fragment.offset)
          return r >= 0 && r < recovered.sequences.count && recovered.sequences[r] == fragment.sequence
            && fragment.sequence <= sequence
        }
        guard complete else {
          report.incompleteObjects += 1
          return true
        }
        var registered = Set<Int>()
        for fragment in head.fragments {
          let r = writer.region(ofOffset: fragment.offset)
          if r != region && registered.insert(r).inserted {
            recovered.dependents[r].append(RegionDependent(hash: header.hash, headOffset: offset))
          }
        }
        index.insert(header.hash, offset: offset)
        report.objectsIndexed += 1
        return true
      }
    } onCorrupt: {
      report.corruptRecords += 1
    }
  }

  /// Walks the valid records of one region's bytes. `body` returns false when the
  /// record fails a deeper check (payload CRC), which ends the walk like a bad header.
  static func forEachRecord(
    in bytes: ByteBuffer, sequence: UInt64, nonce: UInt64,
    _ body: (RecordFormat.RecordHeader, Int, UnsafeRawBufferPointer) -> Bool,
    onCorrupt: () -> Void = {}
  ) {
    bytes.withUnsafeReadableBytes { raw in
      forEachRecord(in: raw, sequence: sequence, nonce: nonce, body, onCorrupt: onCorrupt)
    }
  }

  static func forEachRecord(
    in raw: UnsafeRawBufferPointer, sequence: UInt64, nonce: UInt64,
    _ body: (RecordFormat.RecordHeader, Int, UnsafeRawBufferPointer) -> Bool,
    onCorrupt: () -> Void = {}
  ) {
    do {
      var within = RecordFormat.regionHeaderSize
      while within + RecordFormat.recordHeaderSize <= raw.count {
        let headerBytes = UnsafeRawBufferPointer(rebasing: raw[within..<(within + RecordFormat.recordHeaderSize)])
        // An all-zero header is the unwritten end of the region, not damage.
        if headerBytes.allSatisfy({ $0 == 0 }) { return }
        guard let header = RecordFormat.RecordHeader(headerBytes, nonce: nonce) else {
          onCorrupt()
          return
        }
        // A record from an earlier use of the region: the end of this one.
        guard header.sequence == sequence else { return }
        let start = within + RecordFormat.recordHeaderSize
        guard header.payloadLength <= raw.count - start else {
          onCorrupt()
          return
        }
        let payload = UnsafeRawBufferPointer(rebasing: raw[start..<(start + header.payloadLength)])
        guard body(header, within, payload) else {
          onCorrupt()
          return
        }
        within += RecordFormat.recordSpace(payload: header.payloadLength)
      }
    }
  }
}
