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
  /// The index came from the snapshot written at the last clean close.
  public var fromSnapshot = false
  /// The cache file was written in this format version, which this build does not
  /// read: the file was started afresh (and that was logged).
  public var rejectedFormatVersion: UInt16?

  /// Adds the counts of another part of the same scan (one region's).
  mutating func merge(_ other: RecoveryReport) {
    regionsScanned += other.regionsScanned
    objectsIndexed += other.objectsIndexed
    tombstones += other.tombstones
    corruptRecords += other.corruptRecords
    incompleteObjects += other.incompleteObjects
    bytesRead += other.bytesRead
    fromSnapshot = fromSnapshot || other.fromSnapshot
    rejectedFormatVersion = rejectedFormatVersion ?? other.rejectedFormatVersion
  }
}

/// Rebuilds the index by replaying the log: regions in sequence order, records in
/// order within each, a later head of a key replacing an earlier one and a tombstone
/// removing it. A region's scan stops at the first record that fails a check (a torn
/// tail after a crash); what comes before it is trusted because every header and
/// every head payload carries its CRC.
enum Recovery {
  /// Uses `snapshot` when every region header on disk carries the sequence it recorded;
  /// otherwise replays the log.
  static func recover(
    writer: RegionWriter, regionCount: Int, index: DiskIndex, snapshot: IndexSnapshot?
  ) async throws(CacheError) -> (RecoveredRegions, RecoveryReport) {
    if let snapshot {
      let onDisk = try await regionSequences(writer: writer, regionCount: regionCount)
      // Regions the snapshot calls free may hold stale headers; those it uses must match.
      let matches = (0..<regionCount).allSatisfy { r in
        snapshot.sequences[r] == 0 ? true : onDisk[r] == snapshot.sequences[r]
      }
      if matches, Set(snapshot.order).count == snapshot.order.count,
        snapshot.order.allSatisfy({ snapshot.sequences[$0] != 0 }), index.importTables(snapshot.tables)
      {
        var recovered = RecoveredRegions.empty(regionCount: regionCount)
        recovered.sequences = snapshot.sequences
        recovered.order = snapshot.order
        let used = Set(snapshot.order)
        recovered.free = (0..<regionCount).filter { !used.contains($0) }.reversed()
        for r in recovered.free { recovered.sequences[r] = 0 }
        recovered.nextSequence = max(snapshot.nextSequence, (onDisk.max() ?? 0) + 1)
        recovered.dependents = snapshot.dependents
        var report = RecoveryReport()
        report.fromSnapshot = true
        report.objectsIndexed = index.count
        return (recovered, report)
      }
    }
    return try await scan(writer: writer, regionCount: regionCount, index: index)
  }

  /// The sequence in each region's header (0 when invalid).
  static func regionSequences(writer: RegionWriter, regionCount: Int) async throws(CacheError) -> [UInt64] {
    let io = writer.io
    let nonce = writer.nonce
    let headerOffsets = (0..<regionCount).map { writer.regionOffset($0) }
    return try await DurableFile.onIOThread { () throws(CacheError) -> [UInt64] in
      var found = [UInt64](repeating: 0, count: regionCount)
      for region in 0..<regionCount {
        let header = try io.read(count: RecordFormat.regionHeaderSize, at: headerOffsets[region])
        guard header.count == RecordFormat.regionHeaderSize else { continue }
        found[region] = header.withUnsafeBytes { RecordFormat.readRegionHeader($0, nonce: nonce) } ?? 0
      }
      return found
    }
  }

  static func scan(
    writer: RegionWriter, regionCount: Int, index: DiskIndex
  ) async throws(CacheError) -> (RecoveredRegions, RecoveryReport) {
    var report = RecoveryReport()
    let sequences = try await regionSequences(writer: writer, regionCount: regionCount)
    var recovered = RecoveredRegions.empty(regionCount: regionCount)
    recovered.sequences = sequences
    recovered.order = (0..<regionCount).filter { sequences[$0] != 0 }.sorted { sequences[$0] < sequences[$1] }
    recovered.free = (0..<regionCount).filter { sequences[$0] == 0 }.reversed()
    recovered.nextSequence = (sequences.max() ?? 0) + 1

    let buffer = RegionBuffer(region: 0, sequence: 0, nonce: 0, size: writer.regionSize)
    let io = writer.io
    let size = writer.regionSize
    for region in recovered.order {
      // Read and checked on NIO's thread pool: the CRC of every head in a region is
      // per-byte work that must not hold a cooperative thread. The index changes are
      // applied here, on the caller's side: index tables allocated from the I/O threads
      // would spread over glibc's per-thread arenas (measured: 27 instead of 10 bytes of
      // RSS per object after a replay of 1M objects).
      let offset = writer.regionOffset(region)
      let (found, changes, dependents) = try await DurableFile.onIOThread {
        () throws(CacheError) -> (RecoveryReport, [IndexChange], [(Int, RegionDependent)]) in
        let count = try io.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.memory[0..<size]), at: offset)
        var found = RecoveryReport()
        found.regionsScanned = 1
        found.bytesRead = count
        var changes: [IndexChange] = []
        let dependents = scanRegion(
          UnsafeRawBufferPointer(rebasing: buffer.memory[0..<count]), region: region, sequence: sequences[region],
          sequences: sequences, writer: writer, changes: &changes, report: &found)
        return (found, changes, dependents)
      }
      for change in changes {
        switch change {
        case .insert(let hash, let offset): index.insert(hash, offset: offset)
        case .remove(let hash): index.remove(hash)
        }
      }
      report.merge(found)
      for (r, dependent) in dependents { recovered.dependents[r].append(dependent) }
    }
    return (recovered, report)
  }

  /// A change the log asks of the index, in log order.
  enum IndexChange: Sendable {
    case insert(CacheHash, offset: Int)
    case remove(CacheHash)
  }

  /// Checks one region's records and lists the index changes they make; returns the
  /// heads that depend on fragments in other regions (region, dependent).
  private static func scanRegion(
    _ bytes: UnsafeRawBufferPointer, region: Int, sequence: UInt64, sequences: [UInt64], writer: RegionWriter,
    changes: inout [IndexChange], report: inout RecoveryReport
  ) -> [(Int, RegionDependent)] {
    let base = writer.regionOffset(region)
    let nonce = writer.nonce
    var dependents: [(Int, RegionDependent)] = []
    forEachRecord(in: bytes, sequence: sequence, nonce: nonce) { header, within, payload in
      let offset = base + within
      switch header.kind {
      case .fragment:
        return true
      case .tombstone:
        guard CRC32C.checksum(payload) == header.payloadCRC else { return false }
        report.tombstones += 1
        changes.append(.remove(header.hash))
        return true
      case .head:
        guard CRC32C.checksum(payload) == header.payloadCRC,
          let head = HeadRecord(
            payload: ByteBuffer(bytes: payload), hash: header.hash, offset: offset, sequence: sequence)
        else { return false }
        // Every fragment must still be the one written with this head.
        let complete = head.fragments.allSatisfy { fragment in
          let r = writer.region(ofOffset: fragment.offset)
          return r >= 0 && r < sequences.count && sequences[r] == fragment.sequence && fragment.sequence <= sequence
        }
        guard complete else {
          report.incompleteObjects += 1
          return true
        }
        var registered = Set<Int>()
        for fragment in head.fragments {
          let r = writer.region(ofOffset: fragment.offset)
          if r != region && registered.insert(r).inserted {
            dependents.append(
              (
                r,
                RegionDependent(hash: header.hash, headOffset: offset, weight: head.weight)
              ))
          }
        }
        changes.append(.insert(header.hash, offset: offset))
        report.objectsIndexed += 1
        return true
      }
    } onCorrupt: {
      report.corruptRecords += 1
    }
    return dependents
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
    let seed = RecordFormat.headerSeed(nonce: nonce, sequence: sequence)
    var within = RecordFormat.regionHeaderSize
    while within + RecordFormat.recordHeaderSize <= raw.count {
      let headerBytes = UnsafeRawBufferPointer(rebasing: raw[within..<(within + RecordFormat.recordHeaderSize)])
      let header: RecordFormat.RecordHeader
      switch RecordFormat.RecordHeader.parse(headerBytes, sequence: sequence, seed: seed) {
      case .record(let parsed): header = parsed
      // The end marker, or a record of an earlier use of the region: the end of this use.
      case .end, .leftover: return
      case .damaged:
        onCorrupt()
        return
      }
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
