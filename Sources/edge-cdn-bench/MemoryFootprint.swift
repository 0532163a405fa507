import EdgeCDNStore
import NIOCore

/// RAM per small object in the RAM tier: resident memory against the bytes the tier
/// charges to its budget.
///
/// Why: the budget counts body and encoded meta; the rest of what an object holds (its
/// key, field strings, the shard's dictionary slot, the eviction queue entry, allocator
/// headers) is invisible to it, so with small objects a byte budget can mean several
/// times its size in RSS. Measured in a fresh process before any other figure, with the
/// heap trimmed before each reading (as the disk bench's RSS figure is), one task writing.
enum MemoryFootprint {
  struct Figures {
    var objects: Int
    var residentBytesPerObject: Double
    var chargedBytesPerObject: Double
  }

  static func measure(objects: Int) async throws -> Figures {
    let store = try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: 4 << 30, maxObjectSize: 1 << 20))
    DiskBenchmark.trim()
    let before = DiskBenchmark.residentBytes()
    for i in 0..<objects {
      let key = CacheKey(namespace: "footprint", primary: "example.com/k/\(i)")
      // A fresh body per object, as a proxy's fill copies it out of the socket's buffer.
      let handler = try await store.missHandler(for: key, meta: meta(i))
      try await handler.writeBody(ByteBuffer(repeating: UInt8(truncatingIfNeeded: i), count: 1024), eof: true)
      _ = try await handler.finish()
    }
    DiskBenchmark.trim()
    let after = DiskBenchmark.residentBytes()
    let statistics = store.storageStatistics
    let held = max(statistics.objectCount, 1)
    return Figures(
      objects: statistics.objectCount,
      residentBytesPerObject: Double(after - before) / Double(held),
      chargedBytesPerObject: Double(statistics.usedBytes) / Double(held))
  }

  /// The fields an origin such as nginx sends with a static file.
  static func meta(_ i: Int) -> CacheMeta {
    let now = CacheTime.now()
    return CacheMeta(
      freshUntil: now.adding(seconds: 3600), created: now,
      response: .init(
        status: 200,
        fields: [
          .init("server", "nginx/1.22.1"),
          .init("date", "Sat, 28 Nov 2026 02:46:00 GMT"),
          .init("content-type", "application/octet-stream"),
          .init("content-length", "1024"),
          .init("last-modified", "Sat, 28 Nov 2026 02:40:00 GMT"),
          .init("etag", "\"6929cf40-\(String(i, radix: 16))\""),
          .init("cache-control", "public, max-age=3600"),
          .init("accept-ranges", "bytes"),
        ]))
  }
}
