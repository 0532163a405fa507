import Testing

@testable import EdgeCDNStore

@Suite("BLAKE2b and cache key hashes")
struct CacheHashTests {
  static func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

  @Test("RFC 7693 Appendix A: BLAKE2b-512 of \"abc\"")
  func rfc7693Vector() {
    var hasher = BLAKE2b(digestLength: 64)
    hasher.update(Array("abc".utf8))
    #expect(
      Self.hex(hasher.finalize())
        == "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"
    )
  }

  /// Digests of the reference implementation (CPython's hashlib.blake2b, digest_size=16),
  /// across block boundaries (0, 3, 128, 129 bytes and multi-block).
  @Test(
    "BLAKE2b-128 reference digests",
    arguments: [
      ([UInt8](), "cae66941d9efbd404e4d88758ea67670"),
      (Array("abc".utf8), "cf4ab791c62b8d2b2109c90275287816"),
      (Array("The quick brown fox jumps over the lazy dog".utf8), "249df9a49f517ddcd37f5c897620ec73"),
      ([UInt8](repeating: 0x61, count: 1000), "a0e5a332e985551c28a377c40f4139c3"),
      (Array(0..<128), "a74787004ef589e31149183900d0294a"),
      (Array(0..<129), "aaf1b0371f6d4ee49ee4fb5ddd9c49ef"),
      (Array(0...255) + Array(0...255), "43d6c8c9d71d2bf482bc9fdcb35a5496"),
    ] as [([UInt8], String)])
  func blake2b128(input: [UInt8], expected: String) {
    #expect(CacheHash.blake2b128(input).hex == expected)
  }

  /// The two-array form (array updates, the digest read as words) against the generic
  /// byte-by-byte path, for totals that end on, before and after block boundaries.
  @Test("two-array digests equal the byte-by-byte digest at block boundaries")
  func twoArraysAtBlockBoundaries() {
    for total in [0, 1, 127, 128, 129, 255, 256, 257, 384] {
      let data = Array((0..<total).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) })
      var hasher = BLAKE2b(digestLength: 16)
      hasher.update(data.lazy.map { $0 })
      let reference = CacheHash(bytes: hasher.finalize())
      for split in Set([0, 1, 64, 127, 128, total / 2, total - 1, total]) where (0...total).contains(split) {
        #expect(
          CacheHash.blake2b128(Array(data[..<split]), Array(data[split...])) == reference,
          "total \(total), split \(split)")
      }
    }
  }

  @Test("incremental updates equal one update")
  func incremental() {
    let data = Array((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
    for split in [0, 1, 127, 128, 129, 500, 999] {
      #expect(CacheHash.blake2b128(Array(data[..<split]), Array(data[split...])) == CacheHash.blake2b128(data))
    }
  }

  @Test("keys hash as pingora does: primary = H(namespace ‖ primary), combined = H(primary ‖ variance)")
  func pingoraKeyScheme() {
    let variance = CacheHash.blake2b128(Array("gzip".utf8))
    #expect(variance.hex == "44bfddd9393c2a7ca9ab8fc55bc6efe1")
    let key = CacheKey(namespace: "ns", primary: "/path?q=1", variance: variance)
    #expect(key.primaryHash.hex == "48fd961b85ac3653c6032cb6e1233a3c")
    #expect(key.combinedHash.hex == "fd7d38f7d5c45020402208b2aedf0654")
    #expect(key.compact.combinedHash == key.combinedHash)
    let plain = CacheKey(namespace: "ns", primary: "/path?q=1")
    #expect(plain.combinedHash == plain.primaryHash)
    #expect(CompactCacheKey(combinedHash: key.combinedHash) == key.compact)
  }

  @Test("bytes and the two-word form convert both ways")
  func bytesRoundTrip() {
    let hash = CacheHash.blake2b128(Array("x".utf8))
    #expect(CacheHash(bytes: hash.bytes) == hash)
    #expect(CacheHash(bytes: [1, 2, 3]) == nil)
  }
}
