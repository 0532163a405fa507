// CRC-32C (Castagnoli): the CPU's crc32 instruction when it has one (the CCRC32C C
// target, checked once at run time), else table-driven slicing by 8.
//
// Written by hand because none of the allowed packages exposes a CRC (swift-crypto
// has cryptographic hashes only, which are several times slower than needed to
// check every record and state file; swift-nio has none). CRC-32C is what iSCSI,
// ext4 and RocksDB use to catch torn and corrupted blocks. Both paths are verified
// against RFC 3720's test vectors and against each other.

import CCRC32C

enum CRC32C {
  /// Whether this CPU runs the hardware path (SSE 4.2 on x86-64).
  static let hardware = edge_crc32c_hardware_available() != 0
  /// Eight 256-entry tables, flattened: table t starts at t * 256.
  private static let table: [UInt32] = {
    var table = [UInt32](repeating: 0, count: 8 * 256)
    for i in 0..<256 {
      var crc = UInt32(i)
      for _ in 0..<8 { crc = (crc & 1) == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
      table[i] = crc
    }
    for t in 1..<8 {
      for i in 0..<256 {
        let previous = table[(t - 1) * 256 + i]
        table[t * 256 + i] = (previous >> 8) ^ table[Int(previous & 0xff)]
      }
    }
    return table
  }()

  /// The CRC of `bytes`, continuing from `crc` (the value returned for the bytes before).
  static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    guard hardware, let base = bytes.baseAddress else { return software(bytes, continuing: crc) }
    return edge_crc32c_hardware(crc, base, bytes.count)
  }

  /// The table-driven CRC, for CPUs without the instruction (and tests comparing both).
  static func software(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    table.withUnsafeBufferPointer { t in
      var c = ~crc
      var i = 0
      let n = bytes.count
      while i + 8 <= n {
        let lo = bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian
        let hi = bytes.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
        let x = c ^ lo
        c =
          t[7 * 256 + Int(x & 0xff)] ^ t[6 * 256 + Int((x >> 8) & 0xff)] ^ t[5 * 256 + Int((x >> 16) & 0xff)]
          ^ t[4 * 256 + Int(x >> 24)] ^ t[3 * 256 + Int(hi & 0xff)] ^ t[2 * 256 + Int((hi >> 8) & 0xff)]
          ^ t[256 + Int((hi >> 16) & 0xff)] ^ t[Int(hi >> 24)]
        i += 8
      }
      while i < n {
        c = t[Int((c ^ UInt32(bytes[i])) & 0xff)] ^ (c >> 8)
        i += 1
      }
      return ~c
    }
  }

  static func checksum<Bytes: ContiguousBytes>(_ bytes: Bytes, continuing crc: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBytes { checksum($0, continuing: crc) }
  }
}

/// Byte containers we checksum without copying.
protocol ContiguousBytes {
  func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: ContiguousBytes where Element == UInt8 {}
