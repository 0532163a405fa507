import NIOCore
import StorageConformance
import Testing

@testable import EdgeCDNStore

@Suite("CacheMeta binary encoding")
struct CacheMetaEncodingTests {
  static let sample = CacheMeta(
    freshUntil: CacheTime(millisecondsSinceEpoch: 1_800_000_000_123),
    created: CacheTime(millisecondsSinceEpoch: 1_700_000_000_000),
    updated: CacheTime(millisecondsSinceEpoch: 1_700_000_500_000),
    staleWhileRevalidateSeconds: 30, staleIfErrorSeconds: 86_400,
    variance: CacheHash.blake2b128(Array("br".utf8)),
    response: .init(
      status: 200, reason: "OK",
      fields: [.init("Content-Type", "text/html; charset=utf-8"), .init("ETag", "\"abc\""), .init("X-Ünïcode", "✓")]),
    extensions: [0, 1, 2, 255])

  @Test("round trip is exact, with and without variance")
  func roundTrip() throws {
    var noVariance = Self.sample
    noVariance.variance = nil
    noVariance.extensions = []
    for meta in [Self.sample, noVariance] {
      let encoded = meta.encoded()
      #expect(encoded.readableBytes <= meta.encodedSizeEstimate)
      #expect(try CacheMeta(decoding: encoded) == meta)
    }
  }

  @Test("every truncation throws a clear error")
  func truncation() {
    let encoded = Self.sample.encoded()
    for length in 0..<encoded.readableBytes {
      let truncated = encoded.getSlice(at: 0, length: length) ?? ByteBuffer()
      #expect(throws: CacheError.self) { try CacheMeta(decoding: truncated) }
    }
  }

  @Test("unknown version and trailing bytes are refused")
  func versionAndTrailing() throws {
    var future = Self.sample.encoded()
    future.setInteger(UInt8(2), at: 2)
    do {
      _ = try CacheMeta(decoding: future)
      Issue.record("a future version must be refused")
    } catch {
      #expect(error.description.contains("unsupported metadata version 2"))
    }
    var trailing = Self.sample.encoded()
    trailing.writeInteger(UInt8(0))
    #expect(throws: CacheError.self) { try CacheMeta(decoding: trailing) }
  }

  /// Property test: random bit flips and random garbage never trap or over-read; they
  /// decode to something or throw `corruptMetadata`. Seeded, so failures replay.
  @Test("bit flips and garbage never trap")
  func garbage() {
    var random = SplitMix64(seed: 42)
    let encoded = Array(Self.sample.encoded().readableBytesView)
    for _ in 0..<5000 {
      var bytes = encoded
      for _ in 0...(random.next() % 4) {
        let index = Int(random.next() % UInt64(bytes.count))
        bytes[index] ^= UInt8(1 << (random.next() % 8))
      }
      Self.decodeOrCorrupt(bytes)
    }
    for _ in 0..<5000 {
      let length = Int(random.next() % 200)
      var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
      if length > 3, random.next() % 2 == 0 { bytes[0] = 0x45; bytes[1] = 0x4d; bytes[2] = 1 }
      Self.decodeOrCorrupt(bytes)
    }
  }

  static func decodeOrCorrupt(_ bytes: [UInt8]) {
    do {
      _ = try CacheMeta(decoding: ByteBuffer(bytes: bytes))
    } catch {
      guard case .corruptMetadata = error else {
        Issue.record("unexpected error \(error)")
        return
      }
    }
  }

  @Test("freshness windows")
  func freshness() {
    let meta = Self.sample
    #expect(meta.isFresh(at: meta.freshUntil.adding(milliseconds: -1)))
    #expect(!meta.isFresh(at: meta.freshUntil))
    #expect(meta.isWithinStaleWhileRevalidate(at: meta.freshUntil.adding(seconds: 29)))
    #expect(!meta.isWithinStaleWhileRevalidate(at: meta.freshUntil.adding(seconds: 30)))
    #expect(meta.isWithinStaleIfError(at: meta.freshUntil.adding(seconds: 86_399)))
    #expect(meta.response["content-type"] == "text/html; charset=utf-8")
    #expect(meta.response["etag"] == "\"abc\"")
    #expect(meta.response["missing"] == nil)
  }
}
