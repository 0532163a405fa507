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
  /// 128 bytes, as words so that it is aligned for the loads in `compress`.
  private typealias Block = (
    UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
    UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
  )
  private static let iv: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (
    0x6a09_e667_f3bc_c908, 0xbb67_ae85_84ca_a73b, 0x3c6e_f372_fe94_f82b, 0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1, 0x9b05_688c_2b3e_6c1f, 0x1f83_d9ab_fb41_bd6b, 0x5be0_cd19_137e_2179
  )

  /// The message schedule, one row of 16 word indices per round, flat: one array, read
  /// through one pointer per block.
  private static let sigma: [UInt8] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
    11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4,
    7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8,
    9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13,
    2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9,
    12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11,
    13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10,
    6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5,
    10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
  ]

  /// State and block buffer are tuples, kept inline: as arrays they were two heap
  /// allocations per hash, and a key is hashed on every request for a new URL.
  private var h: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
  private var buffer: Block = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
  private var bufferCount = 0
  private var totalLow: UInt64 = 0
  private var totalHigh: UInt64 = 0
  let digestLength: Int

  /// - Parameter digestLength: output size in bytes, 1...64.
  init(digestLength: Int) {
    precondition((1...64).contains(digestLength), "BLAKE2b digest length must be 1...64")
    self.digestLength = digestLength
    h = Self.iv
    // Parameter block: digest length, key length 0, fanout 1, depth 1.
    h.0 ^= 0x0101_0000 ^ UInt64(digestLength)
  }

  mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
    for byte in bytes {
      if bufferCount == 128 {
        incrementCounter(by: 128)
        compress(isLast: false)
        bufferCount = 0
      }
      let index = bufferCount
      withUnsafeMutableBytes(of: &buffer) { $0[index] = byte }
      bufferCount += 1
    }
  }

  /// The same as the generic `update`, a block's room at a time instead of byte by byte:
  /// a cache key is hashed on every request for a new URL.
  mutating func update(_ source: UnsafeRawBufferPointer) {
    guard let base = source.baseAddress else { return }
    var offset = 0
    while offset < source.count {
      if bufferCount == 128 {
        incrementCounter(by: 128)
        compress(isLast: false)
        bufferCount = 0
      }
      let count = min(128 - bufferCount, source.count - offset)
      let start = bufferCount
      withUnsafeMutableBytes(of: &buffer) { target in
        target.baseAddress?.advanced(by: start).copyMemory(from: base.advanced(by: offset), byteCount: count)
      }
      bufferCount += count
      offset += count
    }
  }

  mutating func update(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { update($0) }
  }

  consuming func finalize() -> [UInt8] {
    padLastBlock()
    compress(isLast: true)
    var out = [UInt8]()
    out.reserveCapacity(digestLength)
    withUnsafeBytes(of: h) { state in
      for i in 0..<digestLength {
        out.append(
          UInt8(truncatingIfNeeded: state.load(fromByteOffset: i / 8 * 8, as: UInt64.self) >> (8 * UInt64(i % 8))))
      }
    }
    return out
  }

  /// The first two state words after the last block: a 16-byte digest read as two
  /// little-endian words (what `CacheHash` holds), without building the byte array.
  consuming func finalizeWords() -> (UInt64, UInt64) {
    assert(digestLength == 16, "finalizeWords reads a 16-byte digest")
    padLastBlock()
    compress(isLast: true)
    return (h.0, h.1)
  }

  /// Counts the last block's bytes and zeroes the rest of it.
  private mutating func padLastBlock() {
    incrementCounter(by: UInt64(bufferCount))
    let start = bufferCount
    withUnsafeMutableBytes(of: &buffer) { block in
      for i in start..<128 { block[i] = 0 }
    }
  }

  private mutating func incrementCounter(by n: UInt64) {
    let (low, overflow) = totalLow.addingReportingOverflow(n)
    totalLow = low
    if overflow { totalHigh &+= 1 }
  }

  /// One block. The message and working vectors live on the stack and are reached
  /// through pointers: as arrays they were two allocations per block and a bounds check
  /// per access.
  private mutating func compress(isLast: Bool) {
    let iv = Self.iv
    let (low, high) = (totalLow, totalHigh)
    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 32) { words in
      guard let m = words.baseAddress else { return }
      let v = m + 16
      withUnsafeBytes(of: buffer) { block in
        for i in 0..<16 { m[i] = UInt64(littleEndian: block.load(fromByteOffset: i * 8, as: UInt64.self)) }
      }
      withUnsafeBytes(of: h) { state in
        for i in 0..<8 { v[i] = state.load(fromByteOffset: i * 8, as: UInt64.self) }
      }
      v[8] = iv.0
      v[9] = iv.1
      v[10] = iv.2
      v[11] = iv.3
      v[12] = iv.4 ^ low
      v[13] = iv.5 ^ high
      v[14] = isLast ? ~iv.6 : iv.6
      v[15] = iv.7

      @inline(__always)
      func mix(_ a: Int, _ b: Int, _ c: Int, _ d: Int, _ x: UInt64, _ y: UInt64) {
        v[a] = v[a] &+ v[b] &+ x
        v[d] = (v[d] ^ v[a]).rotatedRight(32)
        v[c] = v[c] &+ v[d]
        v[b] = (v[b] ^ v[c]).rotatedRight(24)
        v[a] = v[a] &+ v[b] &+ y
        v[d] = (v[d] ^ v[a]).rotatedRight(16)
        v[c] = v[c] &+ v[d]
        v[b] = (v[b] ^ v[c]).rotatedRight(63)
      }

      Self.sigma.withUnsafeBufferPointer { sigma in
        guard let rows = sigma.baseAddress else { return }
        for round in 0..<12 {
          let s = rows + round * 16
          mix(0, 4, 8, 12, m[Int(s[0])], m[Int(s[1])])
          mix(1, 5, 9, 13, m[Int(s[2])], m[Int(s[3])])
          mix(2, 6, 10, 14, m[Int(s[4])], m[Int(s[5])])
          mix(3, 7, 11, 15, m[Int(s[6])], m[Int(s[7])])
          mix(0, 5, 10, 15, m[Int(s[8])], m[Int(s[9])])
          mix(1, 6, 11, 12, m[Int(s[10])], m[Int(s[11])])
          mix(2, 7, 8, 13, m[Int(s[12])], m[Int(s[13])])
          mix(3, 4, 9, 14, m[Int(s[14])], m[Int(s[15])])
        }
      }
      withUnsafeMutableBytes(of: &h) { state in
        for i in 0..<8 {
          let word = state.load(fromByteOffset: i * 8, as: UInt64.self) ^ v[i] ^ v[i + 8]
          state.storeBytes(of: word, toByteOffset: i * 8, as: UInt64.self)
        }
      }
    }
  }
}

extension UInt64 {
  @inline(__always)
  fileprivate func rotatedRight(_ n: UInt64) -> UInt64 {
    (self >> n) | (self << (64 - n))
  }
}
