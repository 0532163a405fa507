/// A 128-bit BLAKE2b digest that names an object everywhere: in RAM indexes, on
/// disk, in eviction managers, and in a pingora host (`HashBinary`).
///
/// Two words instead of `[UInt8]` so that it hashes, compares and stores without
/// an allocation; `bytes` gives pingora's byte order (the digest as produced).
public struct CacheHash: Hashable, Sendable, Comparable, CustomStringConvertible {
  /// Digest bytes 0..<8, little-endian.
  public var high: UInt64
  /// Digest bytes 8..<16, little-endian.
  public var low: UInt64

  public init(high: UInt64, low: UInt64) {
    self.high = high
    self.low = low
  }

  /// Builds a hash from the 16 digest bytes; nil when the count is not 16.
  public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
    guard bytes.count == 16 else { return nil }
    var h: UInt64 = 0
    var l: UInt64 = 0
    for (i, byte) in bytes.enumerated() {
      if i < 8 { h |= UInt64(byte) << (8 * UInt64(i)) } else { l |= UInt64(byte) << (8 * UInt64(i - 8)) }
    }
    self.init(high: h, low: l)
  }

  /// BLAKE2b-128 of the concatenation of `parts`.
  public static func blake2b128<Bytes: Sequence>(_ parts: Bytes...) -> CacheHash where Bytes.Element == UInt8 {
    var hasher = BLAKE2b(digestLength: 16)
    for part in parts { hasher.update(part) }
    // BLAKE2b with digestLength 16 always yields 16 bytes.
    return CacheHash(bytes: hasher.finalize()) ?? CacheHash(high: 0, low: 0)
  }

  /// BLAKE2b-128 of `first` then `second`: the same digest as the variadic form, for the
  /// cache key's two parts without its generic array of parts (a metadata lookup per
  /// call) or the digest's byte array.
  public static func blake2b128(_ first: [UInt8], _ second: [UInt8]) -> CacheHash {
    var hasher = BLAKE2b(digestLength: 16)
    hasher.update(first)
    hasher.update(second)
    let (high, low) = hasher.finalizeWords()
    return CacheHash(high: high, low: low)
  }

  /// The 16 digest bytes in pingora's order.
  public var bytes: [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(16)
    for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: high >> (8 * UInt64(i)))) }
    for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: low >> (8 * UInt64(i)))) }
    return out
  }

  /// Lowercase hex of `bytes`, as pingora prints hashes.
  public var hex: String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(32)
    for byte in bytes {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
  }

  public var description: String { hex }

  public static func < (lhs: CacheHash, rhs: CacheHash) -> Bool {
    (lhs.high.byteSwapped, lhs.low.byteSwapped) < (rhs.high.byteSwapped, rhs.low.byteSwapped)
  }

  /// A well-mixed 64-bit value for sharding; the digest is uniform, so its first word is.
  @inline(__always)
  var shardingBits: UInt64 { high }
}
