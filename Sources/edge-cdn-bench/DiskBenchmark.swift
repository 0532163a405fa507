import ArgumentParser
import EdgeCDNStore
import NIOCore

#if canImport(Glibc)
  import Glibc
#endif

/// The disk tier's figures: write throughput against the raw file system, hit
/// throughput and p99 by size and concurrency, RAM per object (index accounting and
/// RSS), recovery rate and space amplification at `--objects` 1 KiB objects.
struct DiskBenchmark: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "disk", abstract: "Disk tier: throughput, hit latency, RAM per object, recovery, space.")

  @Option(help: "1 KiB objects for the RAM, recovery and space figures.")
  var objects = 1_000_000

  @Option(help: "Folder for the cache files (default: a new folder under /tmp, removed at the end).")
  var path: String?

  @Option(help: "MiB written for the throughput figures.")
  var writeMegabytes = 512

  @Option(help: "Seconds per hit measurement.")
  var seconds = 2.0

  func run() async throws {
    let folder = path ?? "/tmp/edge-cdn-bench-disk-\(getpid())"
    mkdir(folder, 0o755)
    defer { if path == nil { Self.removeTree(folder) } }
    var report = BenchReport()

    // 1. Raw sequential write of the same amount, 4 MiB blocks, fdatasync at the end.
    let rawMBs = try Self.rawWrite(path: folder + "/raw.data", megabytes: writeMegabytes)
    unlink(folder + "/raw.data")
    print("raw sequential write: \(BenchReport.format(rawMBs, decimals: 1)) MB/s")

    // 2. The store: 1 MiB objects written in 64 KiB chunks, then flush (fsync).
    let throughputPath = folder + "/throughput"
    let regionSize = 16 << 20
    let size = 4096 + ((writeMegabytes + 600) / 16 + 8) * regionSize
    let store = try await DiskStore.open(
      configuration: DiskStoreConfiguration(path: throughputPath, size: size, regionSize: regionSize))
    let body = ByteBuffer(repeating: 0x5A, count: 64 << 10)
    let start = ContinuousClock.now
    for i in 0..<writeMegabytes {
      let handler = try await store.missHandler(for: Self.key("mb-\(i)"), meta: Self.meta)
      for c in 0..<16 { try await handler.writeBody(body, eof: c == 15) }
      _ = try await handler.finish()
    }
    try await store.flush()
    let storeMBs = Double(writeMegabytes << 20) / 1e6 / Self.secondsIn(ContinuousClock.now - start)
    print("store write: \(BenchReport.format(storeMBs, decimals: 1)) MB/s (\(writeMegabytes) objects of 1 MiB)")
    report.record("disk.write_mb_s", storeMBs)
    report.record("disk.raw_write_mb_s", rawMBs)

    // 3. Hits: objects of 4 KiB, 128 KiB, 1 MiB (page cache warm: they were just written).
    for (label, objectSize, count) in [("4k", 4 << 10, 20_000), ("128k", 128 << 10, 1000), ("1m", 1 << 20, 200)] {
      let chunk = ByteBuffer(repeating: 0x33, count: objectSize)
      for i in 0..<count {
        let handler = try await store.missHandler(for: Self.key("\(label)-\(i)"), meta: Self.meta)
        try await handler.writeBody(chunk, eof: true)
        _ = try await handler.finish()
      }
      try await store.flush()
      for tasks in [1, 2] {
        let (ops, p99) = try await Self.hits(
          store: store, label: label, count: count, size: objectSize, tasks: tasks, seconds: seconds)
        print("hit \(label) tasks=\(tasks): \(Int(ops)) ops/s, p99 \(Int(p99)) us")
        report.record("disk.hit_\(label).tasks\(tasks).ops_s", ops, decimals: 0)
        report.record("disk.hit_\(label).tasks\(tasks).p99_us", p99, decimals: 0)
      }
    }
    try await store.close()
    Self.removeTree(throughputPath)

    // 4. RAM, space and recovery at `objects` objects of 1 KiB.
    let smallPath = folder + "/small"
    let smallSize = 4096 + (objects * 1200 / regionSize + 8) * regionSize
    let configuration = DiskStoreConfiguration(
      path: smallPath, size: smallSize, regionSize: regionSize, maxObjectSize: 1 << 20)
    let small = try await DiskStore.open(configuration: configuration)
    let kib = ByteBuffer(repeating: 0x42, count: 1024)
    let writeStart = ContinuousClock.now
    for i in 0..<objects {
      let handler = try await small.missHandler(for: Self.key("small-\(i)"), meta: Self.meta)
      try await handler.writeBody(kib, eof: true)
      _ = try await handler.finish()
    }
    try await small.flush()
    let writeRate = Double(objects) / Self.secondsIn(ContinuousClock.now - writeStart)
    let stats = small.statistics
    let indexPerObject = Double(stats.indexBytes) / Double(max(1, stats.objects))
    let amplification = Double(stats.filledBytes) / Double(objects * 1024)
    print("1 KiB objects: \(Int(writeRate)) writes/s, \(stats.objects) indexed, index \(stats.indexBytes) bytes")
    try await small.close()

    Self.trim()
    let rssBefore = Self.residentBytes()
    let reopenStart = ContinuousClock.now
    let reopened = try await DiskStore.open(configuration: configuration)
    let recoverySeconds = Self.secondsIn(ContinuousClock.now - reopenStart)
    Self.trim()
    let rssAfter = Self.residentBytes()
    let recovered = reopened.objectCount
    let rssPerObject = Double(rssAfter - rssBefore) / Double(max(1, recovered))
    print(
      "reopen: \(recovered) objects in \(BenchReport.format(recoverySeconds, decimals: 2)) s, "
        + "RSS +\(rssAfter - rssBefore) bytes; \(reopened.recoveryReport)")
    // Spot-check that what was recovered reads back.
    for i in stride(from: 0, to: objects, by: max(1, objects / 1000)) {
      guard var hit = try await reopened.lookup(Self.key("small-\(i)")) else { continue }
      var read = 0
      while let chunk = try await hit.handler.readBody() { read += chunk.readableBytes }
      if read != 1024 { print("warning: small-\(i) read \(read) bytes") }
    }
    try await reopened.close()
    Self.removeTree(smallPath)

    report.record("disk.index_bytes_per_object", indexPerObject, decimals: 2)
    report.record("disk.rss_bytes_per_object", rssPerObject, decimals: 2)
    report.record("disk.recovery_objects_per_s", Double(recovered) / recoverySeconds, decimals: 0)
    report.record("disk.space_amplification", amplification, decimals: 3)
    report.record("disk.small_write_objects_per_s", writeRate, decimals: 0)
    report.record("disk.objects", objects)
    report.printFigures()
  }

  static let meta: CacheMeta = {
    let now = CacheTime.now()
    return CacheMeta(
      freshUntil: now.adding(seconds: 86_400), created: now, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0,
      response: .init(status: 200, reason: "OK", fields: [.init("content-type", "application/octet-stream")]),
      extensions: [])
  }()

  static func key(_ name: String) -> CacheKey { CacheKey(namespace: "bench", primary: name) }

  static func secondsIn(_ duration: Duration) -> Double {
    let parts = duration.components
    return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
  }

  /// Random hits on `count` objects by `tasks` concurrent tasks for `seconds`.
  static func hits(
    store: DiskStore, label: String, count: Int, size: Int, tasks: Int, seconds: Double
  ) async throws -> (opsPerSecond: Double, p99Microseconds: Double) {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let start = ContinuousClock.now
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
      for t in 0..<tasks {
        group.addTask {
          var generator = SystemRandomNumberGenerator()
          var samples: [Double] = []
          var n = 0
          while ContinuousClock.now < deadline && n < 10_000_000 {
            n += 1
            let i = Int.random(in: 0..<count, using: &generator)
            let began = ContinuousClock.now
            guard var hit = try await store.lookup(key("\(label)-\(i)")) else { continue }
            var read = 0
            while let chunk = try await hit.handler.readBody() { read += chunk.readableBytes }
            precondition(read == size, "hit of \(label)-\(i) (task \(t)) read \(read) of \(size) bytes")
            samples.append(Self.secondsIn(ContinuousClock.now - began) * 1e6)
          }
          return samples
        }
      }
      var all: [Double] = []
      for try await samples in group { all += samples }
      return all
    }
    let elapsed = secondsIn(ContinuousClock.now - start)
    let sorted = latencies.sorted()
    let p99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
    return (Double(latencies.count) / elapsed, p99)
  }

  /// Writes `megabytes` MiB sequentially in 4 MiB pwrites and fdatasyncs: the file
  /// system's own pace, as the store's target.
  static func rawWrite(path: String, megabytes: Int) throws -> Double {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw ValidationError("cannot create \(path): errno \(errno)") }
    defer { close(fd) }
    let block = [UInt8](repeating: 0x5A, count: 4 << 20)
    let start = ContinuousClock.now
    var offset = 0
    while offset < megabytes << 20 {
      let n = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
      guard n > 0 else { throw ValidationError("pwrite failed on \(path): errno \(errno)") }
      offset += n
    }
    fdatasync(fd)
    return Double(megabytes << 20) / 1e6 / secondsIn(ContinuousClock.now - start)
  }

  static func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return 0 }
    let fields = String(decoding: buffer[0..<n], as: UTF8.self).split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }

  /// Gives freed heap back to the kernel so RSS shows what is really held.
  static func trim() {
    _ = glibcMallocTrim(0)
  }

  static func removeTree(_ path: String) {
    for name in ["cache.data", "cache.data.tmp", "raw.data"] { unlink(path + "/" + name) }
    for sub in ["throughput", "small"] {
      unlink(path + "/" + sub + "/cache.data")
      rmdir(path + "/" + sub)
    }
    rmdir(path)
  }
}

/// glibc's malloc_trim, which the Glibc module does not export.
@_silgen_name("malloc_trim")
func glibcMallocTrim(_ pad: Int) -> Int32
