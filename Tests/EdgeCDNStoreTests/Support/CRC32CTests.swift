import Testing

@testable import EdgeCDNStore

@Suite("CRC-32C")
struct CRC32CTests {
  /// RFC 3720 (iSCSI) Appendix B.4 test vectors.
  @Test("RFC 3720 vectors")
  func rfc3720() {
    #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    #expect(CRC32C.checksum([UInt8](repeating: 0xff, count: 32)) == 0x62A8_AB43)
    #expect(CRC32C.checksum(Array(0..<32) as [UInt8]) == 0x46DD_794E)
    #expect(CRC32C.checksum(Array((0..<32).reversed()) as [UInt8]) == 0x113F_DB5C)
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
  }

  @Test("continuing a checksum equals one pass")
  func continuation() {
    let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    for split in [0, 1, 7, 8, 9, 500] {
      let first = CRC32C.checksum(Array(data[..<split]))
      #expect(CRC32C.checksum(Array(data[split...]), continuing: first) == CRC32C.checksum(data))
    }
  }

  // Without SSE 4.2 `checksum` is the software path, and this would compare it with itself.
  @Test("the hardware and software paths agree on every length and alignment", .enabled(if: CRC32C.hardware))
  func hardwareMatchesSoftware() {
    var state: UInt64 = 0x1234_5678
    let data = (0..<50_000).map { _ -> UInt8 in
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return UInt8(truncatingIfNeeded: state >> 33)
    }
    data.withUnsafeBytes { raw in
      for start in 0..<9 {
        // Around the three-chain spans of the hardware path (3 x 256 and 3 x 4096 bytes),
        // a check block (16 KiB) and several long spans.
        let lengths = [0, 1, 7, 8, 9, 31, 32, 33, 100, 767, 768, 769, 1543, 4096, 12_287, 12_288, 12_289, 16_384]
        for length in lengths + [36_871, 49_991 - start] {
          let slice = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
          #expect(CRC32C.checksum(slice, continuing: 0xDEAD_BEEF) == CRC32C.software(slice, continuing: 0xDEAD_BEEF))
          #expect(CRC32C.checksum(slice) == CRC32C.software(slice))
        }
      }
    }
    for vector in [Array("123456789".utf8), [UInt8](repeating: 0xff, count: 32)] {
      #expect(vector.withUnsafeBytes { CRC32C.software($0) } == CRC32C.checksum(vector))
    }
  }
}
