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
    /// The charge by part, averaged over the objects (`MemoryStore.ObjectFootprint`).
    var parts: MemoryStore.ObjectFootprint
  }

  /// - Parameter parsedFields: field values built at run time, as a proxy's parser
  ///   builds them (each one over 15 bytes a heap string), instead of string literals
  ///   (which live in the binary and cost nothing on the heap).
  static func measure(objects: Int, parsedFields: Bool = false) async throws -> Figures {
    let store = try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: 4 << 30, maxObjectSize: 1 << 20))
    DiskBenchmark.trim()
    let before = DiskBenchmark.residentBytes()
    for i in 0..<objects {
      let key = CacheKey(namespace: "footprint", primary: "example.com/k/\(i)")
      // A fresh body per object, as a proxy's fill copies it out of the socket's buffer.
      let handler = try await store.missHandler(for: key, meta: meta(i, parsed: parsedFields))
      try await handler.writeBody(ByteBuffer(repeating: UInt8(truncatingIfNeeded: i), count: 1024), eof: true)
      _ = try await handler.finish()
    }
    DiskBenchmark.trim()
    let after = DiskBenchmark.residentBytes()
    let statistics = store.storageStatistics
    let held = max(statistics.objectCount, 1)
    var parts = MemoryStore.ObjectFootprint(entry: 0, meta: 0, body: 0, memo: 0)
    for i in 0..<objects {
      guard let part = store.footprint(of: CacheKey(namespace: "footprint", primary: "example.com/k/\(i)")) else {
        continue
      }
      parts.entry += part.entry
      parts.meta += part.meta
      parts.body += part.body
      parts.memo += part.memo
    }
    return Figures(
      objects: statistics.objectCount,
      residentBytesPerObject: Double(after - before) / Double(held),
      chargedBytesPerObject: Double(statistics.usedBytes) / Double(held),
      parts: MemoryStore.ObjectFootprint(
        entry: parts.entry / held, meta: parts.meta / held, body: parts.body / held, memo: parts.memo / held))
  }

  /// The fields an origin such as nginx sends with a static file.
  static func meta(_ i: Int, parsed: Bool = false) -> CacheMeta {
    let now = CacheTime.now()
    let fields: [CacheMeta.Field] = [
      .init("server", "nginx/1.22.1"),
      .init("date", "Sat, 28 Nov 2026 02:46:00 GMT"),
      .init("content-type", "application/octet-stream"),
      .init("content-length", "1024"),
      .init("last-modified", "Sat, 28 Nov 2026 02:40:00 GMT"),
      .init("etag", "\"6929cf40-\(String(i, radix: 16))\""),
      .init("cache-control", "public, max-age=3600"),
      .init("accept-ranges", "bytes"),
    ]
    return CacheMeta(
      freshUntil: now.adding(seconds: 3600), created: now,
      response: .init(status: 200, fields: parsed ? fields.map { .init(fresh($0.name), fresh($0.value)) } : fields))
  }

  /// A copy of `text` in storage of its own, as a parser makes it.
  private static func fresh(_ text: String) -> String { String(decoding: Array(text.utf8), as: UTF8.self) }
}
