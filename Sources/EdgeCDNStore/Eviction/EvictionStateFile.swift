import NIOCore

/// The file an eviction manager saves its state to: which keys, with what weight and
/// a small per-policy tag (queue, frequency), in the policy's own order.
///
///     magic "EVST" | version u8 = 1 | policy name: u8 length + UTF-8
///     entry count u64 | entries: hash 16 bytes, weight u64, tag u8 | CRC-32C u32 of all before
///
/// The policy name keeps one policy from loading another's file; the checksum
/// catches truncation and garbage. Both make `load` throw rather than trust it.
public struct EvictionStateFile: Sendable, Equatable {
  public struct Entry: Sendable, Equatable {
    public var hash: CacheHash
    public var weight: Int
    public var tag: UInt8

    public init(hash: CacheHash, weight: Int, tag: UInt8 = 0) {
      self.hash = hash
      self.weight = weight
      self.tag = tag
    }
  }

  public static let fileName = "eviction.state"
  static let magic: [UInt8] = Array("EVST".utf8)
  static let entrySize = 16 + 8 + 1

  public var policy: String
  public var entries: [Entry]

  public init(policy: String, entries: [Entry]) {
    self.policy = policy
    self.entries = entries
  }

  public func encoded() -> [UInt8] {
    var buffer = ByteBuffer()
    buffer.reserveCapacity(16 + policy.utf8.count + entries.count * Self.entrySize)
    buffer.writeBytes(Self.magic)
    buffer.writeInteger(UInt8(1))
    let name = Array(policy.utf8.prefix(255))
    buffer.writeInteger(UInt8(name.count))
    buffer.writeBytes(name)
    buffer.writeInteger(UInt64(entries.count), endianness: .little)
    for entry in entries {
      buffer.writeInteger(entry.hash.high, endianness: .little)
      buffer.writeInteger(entry.hash.low, endianness: .little)
      buffer.writeInteger(UInt64(max(0, entry.weight)), endianness: .little)
      buffer.writeInteger(entry.tag)
    }
    let crc = buffer.withUnsafeReadableBytes { CRC32C.checksum($0) }
    buffer.writeInteger(crc, endianness: .little)
    return Array(buffer.readableBytesView)
  }

  /// Decodes a file written by `encoded()` for `policy`.
  public init(decoding bytes: [UInt8], expectedPolicy: String, path: String) throws(CacheError) {
    func corrupt(_ reason: String) -> CacheError {
      .corruptMetadata(key: nil, reason: "eviction state \(path): \(reason)")
    }
    guard bytes.count >= 4 + 1 + 1 + 8 + 4 else { throw corrupt("truncated (\(bytes.count) bytes)") }
    let stored = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self) }
    let computed = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0.dropLast(4))) }
    guard UInt32(littleEndian: stored) == computed else { throw corrupt("checksum mismatch (torn or overwritten)") }
    var buffer = ByteBuffer(bytes: bytes.dropLast(4))
    guard buffer.readBytes(length: 4) == Self.magic else { throw corrupt("not an eviction state file") }
    guard let version = buffer.readInteger(as: UInt8.self), version == 1 else {
      throw corrupt("unsupported version")
    }
    guard let nameLength = buffer.readInteger(as: UInt8.self),
      let nameBytes = buffer.readBytes(length: Int(nameLength)),
      let name = String(validating: nameBytes, as: UTF8.self)
    else { throw corrupt("truncated policy name") }
    guard name == expectedPolicy else { throw corrupt("saved by policy \(name), not \(expectedPolicy)") }
    guard let count = buffer.readInteger(endianness: .little, as: UInt64.self),
      count == UInt64(buffer.readableBytes / Self.entrySize), buffer.readableBytes % Self.entrySize == 0
    else { throw corrupt("entry count does not match the file size") }
    var entries = [Entry]()
    entries.reserveCapacity(Int(count))
    for _ in 0..<count {
      guard let high = buffer.readInteger(endianness: .little, as: UInt64.self),
        let low = buffer.readInteger(endianness: .little, as: UInt64.self),
        let weight = buffer.readInteger(endianness: .little, as: UInt64.self),
        let tag = buffer.readInteger(as: UInt8.self), weight <= UInt64(Int.max)
      else { throw corrupt("truncated entry") }
      entries.append(Entry(hash: CacheHash(high: high, low: low), weight: Int(weight), tag: tag))
    }
    self.init(policy: name, entries: entries)
  }

  /// Writes the file crash-safely under `directory`, off the cooperative pool.
  public func save(to directory: String) async throws(CacheError) {
    let bytes = encoded()
    try await DurableFile.onIOThread { () throws(CacheError) in
      try DurableFile.makeDirectory(directory)
      try DurableFile.replace(path: directory + "/" + Self.fileName, with: bytes)
    }
  }

  /// Reads the file under `directory`; nil when there is none.
  public static func load(from directory: String, policy: String) async throws(CacheError) -> EvictionStateFile? {
    let path = directory + "/" + fileName
    let bytes = try await DurableFile.onIOThread { () throws(CacheError) in try DurableFile.readAll(path: path) }
    guard let bytes else { return nil }
    return try EvictionStateFile(decoding: bytes, expectedPolicy: policy, path: path)
  }
}
