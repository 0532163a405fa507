import NIOCore

/// The on-disk layout of the cache file. All integers little-endian.
///
///     file header (4096 B): magic "EDCF" u32 | version u16 | 0 u16 | region size u64 | region count u64
///                          | nonce u64 | crc32c u32 of the 32 bytes before
///     region i at 4096 + i * regionSize:
///       region header (32 B): magic "EDRG" u32 | version u16 | 0 u16 | sequence u64 | nonce u64 | 0 u32 | crc u32
///       records, each 16-byte aligned:
///         record header (32 B): kind u8 | version u8 | sequence low 16 bits u16 | payload length u32
///                              | hash high u64 | hash low u64 | payload crc u32
///                              | header crc u32 (over the 28 bytes before, seeded with the file nonce and
///                                the region's full sequence)
///         payload
///       end marker: one all-zero record header after the last record, when it fits
///
/// Every record is bound to its region's use: its header CRC is seeded with the
/// region's sequence, so a record left over from an earlier use of the region fails
/// the check and can never be taken for one of this use (the low 16 bits kept in the
/// header only tell such a leftover, the end of the region's data, from damage). The
/// nonce is random per cache file and seeds every header CRC too, so a body that
/// happens to contain a well-formed header (or one crafted to) can never be taken for
/// a record of this file during a resynchronising scan.
///
/// Version 2 (this one) cut the record header from 48 to 32 bytes (the sequence moved
/// into the CRC seed, the unused fragment index went) and encodes a head's fixed
/// fields as varints (24 bytes to 4 for a 1 KiB object): 1 KiB objects with a 92-byte
/// meta take 1152 bytes instead of 1200. A file of another version is started afresh.
enum RecordFormat {
  static let fileHeaderSize = 4096
  static let fileMagic: UInt32 = 0x4643_4445  // "EDCF"
  static let regionMagic: UInt32 = 0x4752_4445  // "EDRG"
  static let version: UInt16 = 2
  static let regionHeaderSize = 32
  static let recordHeaderSize = 32
  static let alignment = 16
  /// Body bytes covered by one CRC inside a fragment: the granularity of a range read.
  static let checkBlockSize = 16 << 10
  /// Metadata larger than this is refused: it must fit in a head record with room to spare.
  static let maxMetaSize = 64 << 10
  /// Zeros written after the last record, so a scan stops there instead of reading on
  /// into what an earlier use of the region left (which it would count as damage).
  static let endMarker = [UInt8](repeating: 0, count: recordHeaderSize)

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

    func encoded() -> [UInt8] { Self.encoded(regionSize: regionSize, regionCount: regionCount, nonce: nonce) }

    /// A header of any format `version` (tests write old ones to check they are refused).
    static func encoded(
      regionSize: Int, regionCount: Int, nonce: UInt64, version: UInt16 = RecordFormat.version
    ) -> [UInt8] {
      var bytes = [UInt8](repeating: 0, count: RecordFormat.fileHeaderSize)
      bytes.withUnsafeMutableBytes { base in
        var w = RawWriter(base: base, offset: 0)
        w.put(RecordFormat.fileMagic)
        w.put(version)
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
      guard let r = Self.checked(bytes), r.u16(4) == RecordFormat.version else { return nil }
      let size = r.u64(8)
      let count = r.u64(16)
      guard size <= UInt64(Int.max), count <= UInt64(Int.max) else { return nil }
      self.init(regionSize: Int(size), regionCount: Int(count), nonce: r.u64(24))
    }

    /// The format version of a checked header of any version: tells an old cache file
    /// (refused, and said so in the log) from a file that is no cache at all.
    static func version(of bytes: UnsafeRawBufferPointer) -> UInt16? {
      checked(bytes)?.u16(4)
    }

    /// A reader of the bytes when they hold a file header of any version: long enough,
    /// the magic, and the CRC over the first 32 bytes.
    private static func checked(_ bytes: UnsafeRawBufferPointer) -> ByteReader? {
      guard bytes.count >= 36 else { return nil }
      let r = ByteReader(bytes)
      guard r.u32(0) == RecordFormat.fileMagic,
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<32])) == r.u32(32)
      else { return nil }
      return r
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

  /// The seed of the header CRCs of one use of a region: binds each record to the file
  /// and to that use.
  static func headerSeed(nonce: UInt64, sequence: UInt64) -> UInt32 {
    withUnsafeBytes(of: (nonce.littleEndian, sequence.littleEndian)) { CRC32C.checksum($0) }
  }

  struct RecordHeader: Equatable {
    var kind: Kind
    var payloadLength: Int
    var hash: CacheHash
    var payloadCRC: UInt32

    /// Writes the header of a record of the region use `sequence` (whose `seed` is
    /// `headerSeed(nonce:sequence:)`).
    func write(into base: UnsafeMutableRawBufferPointer, at offset: Int, sequence: UInt64, seed: UInt32) {
      var w = RawWriter(base: base, offset: offset)
      w.put(kind.rawValue)
      w.put(UInt8(truncatingIfNeeded: RecordFormat.version))
      w.put(UInt16(truncatingIfNeeded: sequence))
      w.put(UInt32(truncatingIfNeeded: payloadLength))
      w.put(hash.high)
      w.put(hash.low)
      w.put(payloadCRC)
      let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: base[offset..<(offset + 28)]), continuing: seed)
      w.put(crc)
    }

    /// What a scan finds where a record header should be.
    enum Parsed {
      case record(RecordHeader)
      /// All zeros: the end marker, or a part of the region never written.
      case end
      /// A well-formed header of an earlier use of the region: the end of this use's data.
      case leftover
      /// Anything else: damage (a torn write, garbage).
      case damaged
    }

    /// Parses and checks the header of a record of region use `sequence`.
    static func parse(_ bytes: UnsafeRawBufferPointer, sequence: UInt64, seed: UInt32) -> Parsed {
      guard bytes.count >= RecordFormat.recordHeaderSize else { return .damaged }
      if let header = RecordHeader(bytes, seed: seed) { return .record(header) }
      let header = UnsafeRawBufferPointer(rebasing: bytes[0..<RecordFormat.recordHeaderSize])
      if header.allSatisfy({ $0 == 0 }) { return .end }
      let r = ByteReader(bytes)
      let looksLikeHeader = Kind(rawValue: r.u8(0)) != nil && UInt16(r.u8(1)) == RecordFormat.version
      return looksLikeHeader && r.u16(2) != UInt16(truncatingIfNeeded: sequence) ? .leftover : .damaged
    }

    /// Parses and checks a header; nil when anything is off (CRC, version, kind).
    init?(_ bytes: UnsafeRawBufferPointer, seed: UInt32) {
      guard bytes.count >= RecordFormat.recordHeaderSize else { return nil }
      let r = ByteReader(bytes)
      guard UInt16(r.u8(1)) == RecordFormat.version,
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28]), continuing: seed) == r.u32(28),
        let kind = Kind(rawValue: r.u8(0))
      else { return nil }
      self.kind = kind
      self.payloadLength = Int(r.u32(4))
      self.hash = CacheHash(high: r.u64(8), low: r.u64(16))
      self.payloadCRC = r.u32(24)
    }

    init(kind: Kind, payloadLength: Int, hash: CacheHash, payloadCRC: UInt32) {
      self.kind = kind
      self.payloadLength = payloadLength
      self.hash = hash
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
///     payload: meta length varint | fragment count varint | body length varint
///              | meta | fragments (offset u64, sequence u64, length u32) | block CRCs u32 | inline body
///
/// The inline body is what the fragments do not cover (body length minus their
/// lengths): the rest of the payload, its length checked against that. Varints
/// (LEB128) because for a small object these fields are most of the record's overhead.
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

  /// The most bytes the three varints can take (meta length, fragment count: 5 each;
  /// body length: 10).
  static let maxFixedSize = 20

  /// Fragment `i` covers body bytes [fragmentStarts[i], fragmentStarts[i] + length).
  var fragmentedLength: Int { fragments.reduce(0) { $0 + $1.length } }

  /// Meta plus body bytes: what an object is charged (eviction, removal reports), the
  /// same whether it is written, read back, replayed or has its meta replaced.
  static func weight(metaLength: Int, bodyLength: Int) -> Int { metaLength + bodyLength }

  /// The weight this object was charged (see `weight(metaLength:bodyLength:)`).
  var weight: Int { Self.weight(metaLength: metaBytes.readableBytes, bodyLength: bodyLength) }

  static func payloadSize(metaLength: Int, fragmentCount: Int, blockCount: Int, inlineLength: Int) -> Int {
    maxFixedSize + metaLength + fragmentCount * 20 + blockCount * 4 + inlineLength
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
    Varint.write(UInt64(meta.readableBytes), to: &out)
    Varint.write(UInt64(fragments.count), to: &out)
    Varint.write(UInt64(bodyLength), to: &out)
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

  /// Meta plus body bytes: the weight the object was charged, from a head payload whose
  /// CRC was checked; nil when its fixed fields do not parse.
  static func weight(ofPayload payload: UnsafeRawBufferPointer) -> Int? {
    var cursor = 0
    guard let metaLength = Varint.read(payload, at: &cursor), Varint.read(payload, at: &cursor) != nil,
      let bodyLength = Varint.read(payload, at: &cursor), metaLength <= UInt64(Int.max / 4),
      bodyLength <= UInt64(Int.max / 4)
    else { return nil }
    return weight(metaLength: Int(metaLength), bodyLength: Int(bodyLength))
  }

  /// Decodes a payload whose CRC was already checked; nil when lengths are inconsistent.
  init?(payload: ByteBuffer, hash: CacheHash, offset: Int, sequence: UInt64) {
    var p = payload
    guard let metaLength = Varint.read(&p), let fragmentCount = Varint.read(&p), let bodyLength = Varint.read(&p),
      metaLength <= UInt64(p.readableBytes), fragmentCount <= UInt64(p.readableBytes / 20),
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
    guard covered <= Int(bodyLength), p.readableBytes == Int(bodyLength) - covered else { return nil }
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

/// Unsigned LEB128: 7 bits a byte, low bits first, the high bit set on all but the last.
enum Varint {
  static func write(_ value: UInt64, to out: inout ByteBuffer) {
    var v = value
    while v >= 0x80 {
      out.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
      v >>= 7
    }
    out.writeInteger(UInt8(v))
  }

  /// nil at the end of the bytes or for more than 10 bytes (not a UInt64).
  static func read(_ bytes: UnsafeRawBufferPointer, at cursor: inout Int) -> UInt64? {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while cursor < bytes.count, shift < 64 {
      let byte = bytes[cursor]
      cursor += 1
      value |= UInt64(byte & 0x7F) << shift
      if byte & 0x80 == 0 { return value }
      shift += 7
    }
    return nil
  }

  static func read(_ buffer: inout ByteBuffer) -> UInt64? {
    var cursor = 0
    let value = buffer.withUnsafeReadableBytes { read($0, at: &cursor) }
    if value != nil { buffer.moveReaderIndex(forwardBy: cursor) }
    return value
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
