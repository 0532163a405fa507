// BLAKE2b (RFC 7693), unkeyed, with a variable digest length.
//
// Written by hand because no package of the Swift server ecosystem provides it
// (swift-crypto offers SHA-2, SHA-3 and HMAC, not BLAKE2), and we need it byte for
// byte: pingora hashes cache keys with BLAKE2b-128, and the hash is persisted on disk,
// so it must be identical across processes, machines and releases.
// Verified against RFC 7693 Appendix A and the reference implementation's digests
// (see BLAKE2bTests).

/// Incremental BLAKE2b hasher. A value type: copying it forks the hash state.
struct BLAKE2b {
  private static let iv: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (
    0x6a09_e667_f3bc_c908, 0xbb67_ae85_84ca_a73b, 0x3c6e_f372_fe94_f82b, 0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1, 0x9b05_688c_2b3e_6c1f, 0x1f83_d9ab_fb41_bd6b, 0x5be0_cd19_137e_2179
  )

  private static let sigma: [[Int]] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  ]

  private var h: [UInt64]
  private var buffer: [UInt8]
  private var bufferCount = 0
  private var totalLow: UInt64 = 0
  private var totalHigh: UInt64 = 0
  let digestLength: Int

  /// - Parameter digestLength: output size in bytes, 1...64.
  init(digestLength: Int) {
    precondition((1...64).contains(digestLength), "BLAKE2b digest length must be 1...64")
    self.digestLength = digestLength
    let iv = Self.iv
    h = [iv.0, iv.1, iv.2, iv.3, iv.4, iv.5, iv.6, iv.7]
    // Parameter block: digest length, key length 0, fanout 1, depth 1.
    h[0] ^= 0x0101_0000 ^ UInt64(digestLength)
    buffer = [UInt8](repeating: 0, count: 128)
  }

  mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
    for byte in bytes {
      if bufferCount == 128 {
        incrementCounter(by: 128)
        compress(isLast: false)
        bufferCount = 0
      }
      buffer[bufferCount] = byte
      bufferCount += 1
    }
  }

  mutating func update(_ bytes: UnsafeRawBufferPointer) {
    update(bytes.bindMemory(to: UInt8.self))
  }

  consuming func finalize() -> [UInt8] {
    incrementCounter(by: UInt64(bufferCount))
    for i in bufferCount..<128 { buffer[i] = 0 }
    compress(isLast: true)
    var out = [UInt8]()
    out.reserveCapacity(digestLength)
    for i in 0..<digestLength {
      out.append(UInt8(truncatingIfNeeded: h[i / 8] >> (8 * UInt64(i % 8))))
    }
    return out
  }

  private mutating func incrementCounter(by n: UInt64) {
    let (low, overflow) = totalLow.addingReportingOverflow(n)
    totalLow = low
    if overflow { totalHigh &+= 1 }
  }

  private mutating func compress(isLast: Bool) {
    var m = [UInt64](repeating: 0, count: 16)
    for i in 0..<16 {
      var word: UInt64 = 0
      for b in 0..<8 { word |= UInt64(buffer[i * 8 + b]) << (8 * UInt64(b)) }
      m[i] = word
    }
    let iv = Self.iv
    var v: [UInt64] = h + [iv.0, iv.1, iv.2, iv.3, iv.4, iv.5, iv.6, iv.7]
    v[12] ^= totalLow
    v[13] ^= totalHigh
    if isLast { v[14] = ~v[14] }

    @inline(__always)
    func mix(_ v: inout [UInt64], _ a: Int, _ b: Int, _ c: Int, _ d: Int, _ x: UInt64, _ y: UInt64) {
      v[a] = v[a] &+ v[b] &+ x
      v[d] = (v[d] ^ v[a]).rotatedRight(32)
      v[c] = v[c] &+ v[d]
      v[b] = (v[b] ^ v[c]).rotatedRight(24)
      v[a] = v[a] &+ v[b] &+ y
      v[d] = (v[d] ^ v[a]).rotatedRight(16)
      v[c] = v[c] &+ v[d]
      v[b] = (v[b] ^ v[c]).rotatedRight(63)
    }

    for round in 0..<12 {
      let s = Self.sigma[round]
      mix(&v, 0, 4, 8, 12, m[s[0]], m[s[1]])
      mix(&v, 1, 5, 9, 13, m[s[2]], m[s[3]])
      mix(&v, 2, 6, 10, 14, m[s[4]], m[s[5]])
      mix(&v, 3, 7, 11, 15, m[s[6]], m[s[7]])
      mix(&v, 0, 5, 10, 15, m[s[8]], m[s[9]])
      mix(&v, 1, 6, 11, 12, m[s[10]], m[s[11]])
      mix(&v, 2, 7, 8, 13, m[s[12]], m[s[13]])
      mix(&v, 3, 4, 9, 14, m[s[14]], m[s[15]])
    }
    for i in 0..<8 { h[i] ^= v[i] ^ v[i + 8] }
  }
}

extension UInt64 {
  @inline(__always)
  fileprivate func rotatedRight(_ n: UInt64) -> UInt64 {
    (self >> n) | (self << (64 - n))
  }
}
