import NIOCore

/// The on-disk layout of the cache file. All integers little-endian.
///
///     file header (4096 B): magic "EDCF" u32 | version u16 | 0 u16 | region size u64 | region count u64
///                          | nonce u64 | crc32c u32 of the 32 bytes before
///     region i at 4096 + i * regionSize:
///       region header (32 B): magic "EDRG" u32 | version u16 | 0 u16 | sequence u64 | nonce u64 | 0 u32 | crc u32
///       records, each 16-byte aligned:
///         record header (48 B): magic u16 | kind u8 | version u8 | payload length u32 | sequence u64
///                               | hash high u64 | hash low u64 | fragment index u32 | payload crc u32 | 0 u32
///                               | header crc u32 (over the 44 bytes before, seeded with the file nonce)
///         payload
///
/// Every record repeats its region's sequence: a record left over from an earlier use
/// of the region has another sequence, so a scan stops there without zeroing the
/// region first. The nonce is random per cache file and seeds every header CRC, so a
/// body that happens to contain a well-formed header (or one crafted to) can never be
/// taken for a record of this file during a resynchronising scan.
enum RecordFormat {
  static let fileHeaderSize = 4096
  static let fileMagic: UInt32 = 0x4643_4445  // "EDCF"
  static let regionMagic: UInt32 = 0x4752_4445  // "EDRG"
  static let recordMagic: UInt16 = 0xC1ED
  static let version: UInt16 = 1
  static let regionHeaderSize = 32
  static let recordHeaderSize = 48
  static let alignment = 16
  /// Body bytes covered by one CRC inside a fragment: the granularity of a range read.
  static let checkBlockSize = 16 << 10
  /// Metadata larger than this is refused: it must fit in a head record with room to spare.
  static let maxMetaSize = 64 << 10

  enum Kind: UInt8 {
    case head = 1
    case fragment = 2
    case tombstone = 3
  }

  static func aligned(_ size: Int) -> Int { (size + alignment - 1) & ~(alignment - 1) }

  /// The space a record with `payload` bytes takes in a region.
  static func recordSpace(payload: Int) -> Int { aligned(recordHeaderSize + payload) }

  // MARK: File header

  struct FileHeader: Equatable {
    var regionSize: Int
    var regionCount: Int
    var nonce: UInt64

    func encoded() -> [UInt8] {
      var bytes = [UInt8](repeating: 0, count: RecordFormat.fileHeaderSize)
      bytes.withUnsafeMutableBytes { base in
        var w = RawWriter(base: base, offset: 0)
        w.put(RecordFormat.fileMagic)
        w.put(RecordFormat.version)
        w.put(UInt16(0))
        w.put(UInt64(regionSize))
        w.put(UInt64(regionCount))
        w.put(nonce)
        w.put(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: base[0..<32])))
      }
      return bytes
    }

    init(regionSize: Int, regionCount: Int, nonce: UInt64) {
      self.regionSize = regionSize
      self.regionCount = regionCount
      self.nonce = nonce
    }

    /// nil when the bytes are not a valid header of this version.
    init?(_ bytes: UnsafeRawBufferPointer) {
      guard bytes.count >= 36 else { return nil }
      let r = ByteReader(bytes)
      guard r.u32(0) == RecordFormat.fileMagic, r.u16(4) == RecordFormat.version,
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<32])) == r.u32(32)
      else { return nil }
      let size = r.u64(8)
      let count = r.u64(16)
      guard size <= UInt64(Int.max), count <= UInt64(Int.max) else { return nil }
      self.init(regionSize: Int(size), regionCount: Int(count), nonce: r.u64(24))
    }
  }

  // MARK: Region header

  static func writeRegionHeader(sequence: UInt64, nonce: UInt64, into base: UnsafeMutableRawBufferPointer) {
    var w = RawWriter(base: base, offset: 0)
    w.put(regionMagic)
    w.put(version)
    w.put(UInt16(0))
    w.put(sequence)
    w.put(nonce)
    w.put(UInt32(0))
    let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: base[0..<28]))
    w.put(crc)
  }

  /// The region's sequence, or nil when the header is not one of this file.
  static func readRegionHeader(_ bytes: UnsafeRawBufferPointer, nonce: UInt64) -> UInt64? {
    guard bytes.count >= regionHeaderSize else { return nil }
    let r = ByteReader(bytes)
    guard r.u32(0) == regionMagic, r.u16(4) == version, r.u64(16) == nonce,
      CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28])) == r.u32(28)
    else { return nil }
    let sequence = r.u64(8)
    return sequence == 0 ? nil : sequence
  }

  // MARK: Record header

  struct RecordHeader: Equatable {
    var kind: Kind
    var payloadLength: Int
    var sequence: UInt64
    var hash: CacheHash
    var fragmentIndex: UInt32
    var payloadCRC: UInt32

    func write(into base: UnsafeMutableRawBufferPointer, at offset: Int, nonce: UInt64) {
      var w = RawWriter(base: base, offset: offset)
      w.put(RecordFormat.recordMagic)
      w.put(kind.rawValue)
      w.put(UInt8(RecordFormat.version))
      w.put(UInt32(truncatingIfNeeded: payloadLength))
      w.put(sequence)
      w.put(hash.high)
      w.put(hash.low)
      w.put(fragmentIndex)
      w.put(payloadCRC)
      w.put(UInt32(0))
      let crc = CRC32C.checksum(
        UnsafeRawBufferPointer(rebasing: base[offset..<(offset + 44)]), continuing: UInt32(truncatingIfNeeded: nonce))
      w.put(crc)
    }

    /// Parses and checks a header; nil when anything is off (magic, version, CRC, kind).
    init?(_ bytes: UnsafeRawBufferPointer, nonce: UInt64) {
      guard bytes.count >= RecordFormat.recordHeaderSize else { return nil }
      let r = ByteReader(bytes)
      guard r.u16(0) == RecordFormat.recordMagic, UInt16(r.u8(3)) == RecordFormat.version,
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<44]), continuing: UInt32(truncatingIfNeeded: nonce))
          == r.u32(44),
        let kind = Kind(rawValue: r.u8(2))
      else { return nil }
      self.kind = kind
      self.payloadLength = Int(r.u32(4))
      self.sequence = r.u64(8)
      self.hash = CacheHash(high: r.u64(16), low: r.u64(24))
      self.fragmentIndex = r.u32(32)
      self.payloadCRC = r.u32(36)
    }

    init(kind: Kind, payloadLength: Int, sequence: UInt64, hash: CacheHash, fragmentIndex: UInt32, payloadCRC: UInt32) {
      self.kind = kind
      self.payloadLength = payloadLength
      self.sequence = sequence
      self.hash = hash
      self.fragmentIndex = fragmentIndex
      self.payloadCRC = payloadCRC
    }
  }
}

/// Where one fragment's record lies, and which use of its region wrote it.
struct FragmentRef: Hashable, Sendable {
  /// File offset of the record (its header).
  var offset: Int
  var sequence: UInt64
  /// Body bytes in the fragment.
  var length: Int
}

/// A decoded head record: everything a reader needs to serve the object.
///
///     payload: meta length u32 | fragment count u32 | body length u64 | inline length u32 | block size u32
///              | meta | fragments (offset u64, sequence u64, length u32) | block CRCs u32 | inline body
struct HeadRecord: Sendable {
  var hash: CacheHash
  var metaBytes: ByteBuffer
  var bodyLength: Int
  var fragments: [FragmentRef]
  var blockCRCs: [UInt32]
  var inline: ByteBuffer
  /// File offset and region sequence of this head record.
  var offset: Int
  var sequence: UInt64

  static let fixedSize = 24

  /// Fragment `i` covers body bytes [fragmentStarts[i], fragmentStarts[i] + length).
  var fragmentedLength: Int { fragments.reduce(0) { $0 + $1.length } }

  static func payloadSize(metaLength: Int, fragmentCount: Int, blockCount: Int, inlineLength: Int) -> Int {
    fixedSize + metaLength + fragmentCount * 20 + blockCount * 4 + inlineLength
  }

  /// Encodes the payload (without the record header).
  static func encodePayload(
    meta: ByteBuffer, bodyLength: Int, fragments: [FragmentRef], blockCRCs: [UInt32], inline: ByteBuffer
  ) -> ByteBuffer {
    var out = ByteBuffer()
    out.reserveCapacity(
      payloadSize(
        metaLength: meta.readableBytes, fragmentCount: fragments.count, blockCount: blockCRCs.count,
        inlineLength: inline.readableBytes))
    out.writeInteger(UInt32(meta.readableBytes), endianness: .little)
    out.writeInteger(UInt32(fragments.count), endianness: .little)
    out.writeInteger(UInt64(bodyLength), endianness: .little)
    out.writeInteger(UInt32(inline.readableBytes), endianness: .little)
    out.writeInteger(UInt32(RecordFormat.checkBlockSize), endianness: .little)
    out.writeImmutableBuffer(meta)
    for fragment in fragments {
      out.writeInteger(UInt64(fragment.offset), endianness: .little)
      out.writeInteger(fragment.sequence, endianness: .little)
      out.writeInteger(UInt32(fragment.length), endianness: .little)
    }
    for crc in blockCRCs { out.writeInteger(crc, endianness: .little) }
    out.writeImmutableBuffer(inline)
    return out
  }

  /// Decodes a payload whose CRC was already checked; nil when lengths are inconsistent.
  init?(payload: ByteBuffer, hash: CacheHash, offset: Int, sequence: UInt64) {
    var p = payload
    guard let metaLength = p.readInteger(endianness: .little, as: UInt32.self),
      let fragmentCount = p.readInteger(endianness: .little, as: UInt32.self),
      let bodyLength = p.readInteger(endianness: .little, as: UInt64.self),
      let inlineLength = p.readInteger(endianness: .little, as: UInt32.self),
      let blockSize = p.readInteger(endianness: .little, as: UInt32.self),
      Int(blockSize) == RecordFormat.checkBlockSize,
      Int(metaLength) <= p.readableBytes, Int(fragmentCount) * 20 <= p.readableBytes,
      bodyLength <= UInt64(Int.max / 2),
      let meta = p.readSlice(length: Int(metaLength))
    else { return nil }
    var fragments: [FragmentRef] = []
    fragments.reserveCapacity(Int(fragmentCount))
    var blocks = 0
    var covered = 0
    for _ in 0..<fragmentCount {
      guard let fOffset = p.readInteger(endianness: .little, as: UInt64.self),
        let fSequence = p.readInteger(endianness: .little, as: UInt64.self),
        let fLength = p.readInteger(endianness: .little, as: UInt32.self), fOffset <= UInt64(Int.max), fLength > 0
      else { return nil }
      fragments.append(FragmentRef(offset: Int(fOffset), sequence: fSequence, length: Int(fLength)))
      blocks += (Int(fLength) + RecordFormat.checkBlockSize - 1) / RecordFormat.checkBlockSize
      covered += Int(fLength)
    }
    guard blocks * 4 <= p.readableBytes else { return nil }
    var crcs: [UInt32] = []
    crcs.reserveCapacity(blocks)
    for _ in 0..<blocks {
      guard let crc = p.readInteger(endianness: .little, as: UInt32.self) else { return nil }
      crcs.append(crc)
    }
    guard p.readableBytes == Int(inlineLength), covered + Int(inlineLength) == Int(bodyLength) else { return nil }
    self.hash = hash
    self.metaBytes = meta
    self.bodyLength = Int(bodyLength)
    self.fragments = fragments
    self.blockCRCs = crcs
    self.inline = p
    self.offset = offset
    self.sequence = sequence
  }
}

/// Little-endian reads at fixed offsets of a raw buffer; callers check the length first.
struct ByteReader {
  let bytes: UnsafeRawBufferPointer
  init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
  func u8(_ at: Int) -> UInt8 { bytes[at] }
  func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
  func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
  func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
}

/// Little-endian writes into a raw buffer at a moving offset; callers size the buffer.
struct RawWriter {
  let base: UnsafeMutableRawBufferPointer
  var offset: Int
  mutating func put<T: FixedWidthInteger>(_ value: T) {
    base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    offset += MemoryLayout<T>.size
  }
}
