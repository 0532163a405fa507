public import NIOCore

/// The binary form of `CacheMeta`, version 1 (all integers little-endian):
///
///     magic "EM" | version u8 = 1 | flags u8 (bit 0: variance present)
///     fresh_until i64 ms | created i64 ms | updated i64 ms
///     stale_while_revalidate u32 s | stale_if_error u32 s
///     [variance 16 bytes]
///     status u16 | reason: u16 length + UTF-8
///     field count u32 | per field: name u16 length + UTF-8, value u32 length + UTF-8
///     extensions: u32 length + bytes
///
/// Fields are only ever appended in later versions and the version byte tells a
/// reader which it holds; a reader refuses versions newer than it knows rather than
/// guess. Every length is checked against the bytes left before anything is read
/// or allocated, so garbage cannot trap nor make us allocate more than the input.
extension CacheMeta {
  public static let encodingVersion: UInt8 = 1
  static let magic: (UInt8, UInt8) = (0x45, 0x4d)  // "EM"

  /// Appends the encoding to `buffer`.
  public func encode(into buffer: inout ByteBuffer) {
    buffer.writeInteger(Self.magic.0)
    buffer.writeInteger(Self.magic.1)
    buffer.writeInteger(Self.encodingVersion)
    buffer.writeInteger(UInt8(variance == nil ? 0 : 1))
    buffer.writeInteger(freshUntil.millisecondsSinceEpoch, endianness: .little)
    buffer.writeInteger(created.millisecondsSinceEpoch, endianness: .little)
    buffer.writeInteger(updated.millisecondsSinceEpoch, endianness: .little)
    buffer.writeInteger(staleWhileRevalidateSeconds, endianness: .little)
    buffer.writeInteger(staleIfErrorSeconds, endianness: .little)
    if let variance {
      buffer.writeInteger(variance.high, endianness: .little)
      buffer.writeInteger(variance.low, endianness: .little)
    }
    buffer.writeInteger(response.status, endianness: .little)
    Self.writeString(response.reason, lengthType: UInt16.self, into: &buffer)
    buffer.writeInteger(UInt32(truncatingIfNeeded: response.fields.count), endianness: .little)
    for field in response.fields {
      Self.writeString(field.name, lengthType: UInt16.self, into: &buffer)
      Self.writeString(field.value, lengthType: UInt32.self, into: &buffer)
    }
    buffer.writeInteger(UInt32(truncatingIfNeeded: extensions.count), endianness: .little)
    buffer.writeBytes(extensions)
  }

  /// The encoding as a fresh buffer.
  public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: encodedSizeEstimate)
    encode(into: &buffer)
    return buffer
  }

  /// An upper bound of the encoded size, cheap to compute: what stores charge for meta.
  public var encodedSizeEstimate: Int {
    var size = 4 + 24 + 8 + (variance == nil ? 0 : 16) + 2 + 2 + response.reason.utf8.count + 4 + 4 + extensions.count
    for field in response.fields { size += 6 + field.name.utf8.count + field.value.utf8.count }
    return size
  }

  /// Decodes one encoding that must fill `buffer`'s readable bytes exactly.
  ///
  /// - Throws: `CacheError.corruptMetadata` naming what was wrong, for truncated
  ///   input, a bad magic, an unknown version, invalid UTF-8 or trailing bytes.
  public init(decoding buffer: ByteBuffer, key: CacheHash? = nil) throws(CacheError) {
    var reader = buffer
    func fail(_ reason: String) -> CacheError { .corruptMetadata(key: key, reason: reason) }
    func integer<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(CacheError) -> T {
      guard let value = reader.readInteger(endianness: .little, as: T.self) else {
        throw fail("truncated at \(what) (\(buffer.readableBytes) bytes in all)")
      }
      return value
    }
    func string<L: FixedWidthInteger>(_: L.Type, _ what: String) throws(CacheError) -> String {
      let length = Int(try integer(L.self, "\(what) length"))
      guard length <= reader.readableBytes, let bytes = reader.readBytes(length: length) else {
        throw fail("\(what) length \(length) exceeds the \(reader.readableBytes) bytes left")
      }
      guard let text = String(validating: bytes, as: UTF8.self) else { throw fail("\(what) is not valid UTF-8") }
      return text
    }

    let m0 = try integer(UInt8.self, "magic")
    let m1 = try integer(UInt8.self, "magic")
    guard m0 == Self.magic.0, m1 == Self.magic.1 else { throw fail("bad magic \(m0) \(m1), not cache metadata") }
    let version = try integer(UInt8.self, "version")
    guard version == 1 else {
      throw fail("unsupported metadata version \(version) (this build reads up to \(Self.encodingVersion))")
    }
    let flags = try integer(UInt8.self, "flags")
    guard flags & ~1 == 0 else { throw fail("unknown flags \(flags)") }
    let freshUntil = CacheTime(millisecondsSinceEpoch: try integer(Int64.self, "fresh_until"))
    let created = CacheTime(millisecondsSinceEpoch: try integer(Int64.self, "created"))
    let updated = CacheTime(millisecondsSinceEpoch: try integer(Int64.self, "updated"))
    let swr = try integer(UInt32.self, "stale_while_revalidate")
    let sie = try integer(UInt32.self, "stale_if_error")
    var variance: CacheHash?
    if flags & 1 == 1 {
      variance = CacheHash(high: try integer(UInt64.self, "variance"), low: try integer(UInt64.self, "variance"))
    }
    let status = try integer(UInt16.self, "status")
    let reason = try string(UInt16.self, "reason")
    let fieldCount = Int(try integer(UInt32.self, "field count"))
    // Each field takes at least 6 bytes: refuse a count the input cannot hold before reserving for it.
    guard fieldCount <= reader.readableBytes / 6 else {
      throw fail("field count \(fieldCount) exceeds what \(reader.readableBytes) bytes can hold")
    }
    var fields = [Field]()
    fields.reserveCapacity(fieldCount)
    for index in 0..<fieldCount {
      let name = try string(UInt16.self, "field \(index) name")
      let value = try string(UInt32.self, "field \(index) value")
      fields.append(Field(name, value))
    }
    let extensionsLength = Int(try integer(UInt32.self, "extensions length"))
    guard extensionsLength <= reader.readableBytes, let extensions = reader.readBytes(length: extensionsLength) else {
      throw fail("extensions length \(extensionsLength) exceeds the \(reader.readableBytes) bytes left")
    }
    guard reader.readableBytes == 0 else { throw fail("\(reader.readableBytes) unexpected trailing bytes") }

    self.init(
      freshUntil: freshUntil, created: created, updated: updated,
      staleWhileRevalidateSeconds: swr, staleIfErrorSeconds: sie, variance: variance,
      response: ResponseHeader(status: status, reason: reason, fields: fields), extensions: extensions)
  }

  private static func writeString<L: FixedWidthInteger>(
    _ text: String, lengthType: L.Type, into buffer: inout ByteBuffer
  ) {
    // Longer values than the length field can hold are truncated at a byte boundary; the
    // proxy's header limits keep real values far below 64 KiB (names) and 4 GiB (values).
    let utf8 = text.utf8
    let count = min(utf8.count, Int(L.max))
    buffer.writeInteger(L(count), endianness: .little)
    buffer.writeBytes(utf8.prefix(count))
  }
}
