import ArgumentParser
import EdgeCDNStore
import Foundation
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

  @Flag(help: "Only the write throughput figures (raw and store), with the CPU time each took.")
  var writeOnly = false

  @Option(help: "Rounds of the store and raw writes (medians are reported; the order rotates each round).")
  var writeRounds = 3

  @Flag(help: "The store writes through the page cache (disk.directWrites false), to compare with direct writes.")
  var bufferedWrites = false

  @Option(
    help: ArgumentHelp(
      "Only these write-throughput writers, comma-separated (store, rawDirect, rawBuffered, rawPlain, fioDirect, fioBuffered): for profiling one.",
      visibility: .hidden))
  var writers: String?

  func run() async throws {
    // Fixed glibc mmap threshold: large buffers (regions, region reads) go back to the
    // kernel when freed, so RSS deltas show what is held, not the allocator's slack.
    _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 1 << 20)
    let folder = path ?? "/tmp/edge-cdn-bench-disk-\(getpid())"
    mkdir(folder, 0o755)
    defer { if path == nil { Self.removeTree(folder) } }
    var report = BenchReport()

    // 1-2. Write throughput: the store against plain large-block writes of the same
    // amount to the same file system (DiskWriteThroughput).
    let regionSize = 16 << 20
    let size = 4096 + ((writeMegabytes + 600) / 16 + 8) * regionSize
    let throughputPath = folder + "/throughput"
    try await DiskWriteThroughput(
      folder: folder, megabytes: writeMegabytes, rounds: writeRounds, storeSize: size, regionSize: regionSize,
      directWrites: !bufferedWrites,
      only: Set((writers ?? "").split(separator: ",").map(String.init))
    ).run(into: &report)
    if writeOnly {
      report.printFigures()
      return
    }
    let store = try await DiskStore.open(
      configuration: DiskStoreConfiguration(
        path: throughputPath, size: size, regionSize: regionSize, directWrites: !bufferedWrites))

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

    // 3b. One 256 MiB object with 64 KiB fragments: how much RSS grows while it is written.
    let bigGrowth = try await Self.bigObjectGrowth(path: folder + "/big")
    print("256 MiB object: RSS grew \(bigGrowth) bytes while writing")
    report.record("disk.big_object_rss_growth_mb", Double(bigGrowth) / 1_048_576, decimals: 1)

    // 4. RAM, space and recovery at `objects` objects of 1 KiB.
    let smallPath = folder + "/small"
    let smallSize = 4096 + (objects * 1200 / regionSize + 8) * regionSize
    let configuration = DiskStoreConfiguration(
      path: smallPath, size: smallSize, regionSize: regionSize, maxObjectSize: 1 << 20, directWrites: !bufferedWrites)
    // In a function of its own so the writing store is gone before RSS is measured.
    let (writeRate, indexPerObject, amplification) = try await Self.writeSmall(
      configuration: configuration, objects: objects)
    // Reopen in a fresh process, so its RSS delta is the store's alone, not memory
    // this process freed earlier and the allocator reuses.
    let probeArguments = [
      "disk-reopen-probe", "--path", smallPath, "--size", "\(smallSize)", "--region-size", "\(regionSize)",
      "--objects", "\(objects)",
    ]
    // First from the snapshot the clean close left (the probe's own close writes it again),
    // then replaying the whole log (snapshot deleted first).
    let fromSnapshot = try Self.runProbe(arguments: probeArguments)
    let snapshotRate =
      (Double(fromSnapshot["objects"] ?? "0") ?? 0) / max(Double(fromSnapshot["seconds"] ?? "1") ?? 1, 1e-9)
    print(
      "reopen from snapshot: \(fromSnapshot.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
    )
    let probe = try Self.runProbe(arguments: probeArguments + ["--replay"])
    let recovered = Double(probe["objects"] ?? "0") ?? 0
    let recoverySeconds = Double(probe["seconds"] ?? "0") ?? 0
    let rssDelta = (Double(probe["rss_after"] ?? "0") ?? 0) - (Double(probe["rss_before"] ?? "0") ?? 0)
    let rssPerObject = rssDelta / max(1, recovered)
    print("reopen probe: \(probe.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
    Self.removeTree(smallPath)

    report.record("disk.index_bytes_per_object", indexPerObject, decimals: 2)
    report.record("disk.rss_bytes_per_object", rssPerObject, decimals: 2)
    report.record("disk.recovery_objects_per_s", recovered / max(recoverySeconds, 1e-9), decimals: 0)
    report.record("disk.snapshot_recovery_objects_per_s", snapshotRate, decimals: 0)
    report.record("disk.space_amplification", amplification, decimals: 3)
    // The same with the stored response header (meta) counted as payload, as a file per
    // object would count it.
    let metaBytes = Double(Self.meta.encoded().readableBytes)
    report.record("disk.space_amplification_with_meta", amplification * 1024 / (1024 + metaBytes), decimals: 3)
    report.record("disk.small_write_objects_per_s", writeRate, decimals: 0)
    report.record("disk.objects", objects)
    report.printFigures()
  }

  /// Writes `objects` 1 KiB objects; returns writes/s, index bytes per object, space amplification.
  static func writeSmall(
    configuration: DiskStoreConfiguration, objects: Int
  ) async throws -> (Double, Double, Double) {
    let small = try await DiskStore.open(configuration: configuration)
    let kib = ByteBuffer(repeating: 0x42, count: 1024)
    let writeStart = ContinuousClock.now
    for i in 0..<objects {
      let handler = try await small.missHandler(for: key("small-\(i)"), meta: meta)
      try await handler.writeBody(kib, eof: true)
      _ = try await handler.finish()
    }
    try await small.flush()
    let writeRate = Double(objects) / Measure.seconds(ContinuousClock.now - writeStart)
    let stats = small.statistics
    let indexPerObject = Double(stats.indexBytes) / Double(max(1, stats.objects))
    let amplification = Double(stats.filledBytes) / Double(objects * 1024)
    print("1 KiB objects: \(Int(writeRate)) writes/s, \(stats.objects) indexed, index \(stats.indexBytes) bytes")
    try await small.close()

    return (writeRate, indexPerObject, amplification)
  }

  static func bigObjectGrowth(path: String) async throws -> Int {
    let regionSize = 4 << 20
    let store = try await DiskStore.open(
      configuration: DiskStoreConfiguration(
        path: path, size: 4096 + 140 * regionSize, regionSize: regionSize, fragmentSize: 64 << 10,
        maxObjectSize: 256 << 20))
    let chunk = ByteBuffer(repeating: 0x77, count: 64 << 10)
    trim()
    let before = residentBytes()
    var peak = before
    let handler = try await store.missHandler(for: key("big"), meta: meta)
    for k in 0..<4096 {
      try await handler.writeBody(chunk, eof: k == 4095)
      if k % 64 == 0 { peak = max(peak, residentBytes()) }
    }
    _ = try await handler.finish()
    try await store.close()
    for name in ["cache.data", "cache.data.index"] { unlink(path + "/" + name) }
    rmdir(path)
    return peak - before
  }

  /// Runs this executable with `arguments`; returns its `probe.name=value` lines.
  static func runProbe(arguments: [String]) throws -> [String: String] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    var figures: [String: String] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("probe.") {
      let parts = line.dropFirst("probe.".count).split(separator: "=", maxSplits: 1)
      if parts.count == 2 { figures[String(parts[0])] = String(parts[1]) }
    }
    return figures
  }

  static let meta: CacheMeta = {
    let now = CacheTime.now()
    return CacheMeta(
      freshUntil: now.adding(seconds: 86_400), created: now, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0,
      response: .init(status: 200, reason: "OK", fields: [.init("content-type", "application/octet-stream")]),
      extensions: [])
  }()

  static func key(_ name: String) -> CacheKey { CacheKey(namespace: "bench", primary: name) }

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
            samples.append(Measure.seconds(ContinuousClock.now - began) * 1e6)
          }
          return samples
        }
      }
      var all: [Double] = []
      for try await samples in group { all += samples }
      return all
    }
    let elapsed = Measure.seconds(ContinuousClock.now - start)
    let sorted = latencies.sorted()
    let p99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
    return (Double(latencies.count) / elapsed, p99)
  }

  static func dumpLargeMappings(_ label: String) {
    guard getenv("DISK_BENCH_SMAPS") != nil else { return }
    let fd = open("/proc/self/smaps", O_RDONLY)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var data = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n <= 0 { break }
      data += buffer[0..<n]
    }
    var mapping = ""
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
      if let first = line.first, first.isHexDigit, line.contains("-") { mapping = String(line) }
      if line.hasPrefix("Rss:"), let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]),
        kb > 2048
      {
        print("\(label): \(kb) kB \(mapping)")
      }
    }
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
    for name in ["cache.data", "cache.data.tmp", "cache.data.index", "cache.data.index.tmp", "raw.data", "fio.data"] {
      unlink(path + "/" + name)
    }
    for sub in ["throughput", "small"] {
      for name in ["cache.data", "cache.data.index", "cache.data.index.tmp"] { unlink(path + "/" + sub + "/" + name) }
      rmdir(path + "/" + sub)
    }
    rmdir(path)
  }
}

/// glibc's malloc_trim, which the Glibc module does not export.
@_silgen_name("malloc_trim")
func glibcMallocTrim(_ pad: Int) -> Int32

/// glibc's mallopt.
@_silgen_name("mallopt")
func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// Opens a cache in a fresh process and reports the recovery time and the RSS it
/// added (run by `disk`; hidden).
struct DiskReopenProbe: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "disk-reopen-probe", abstract: "Reopens a disk cache and reports RSS.", shouldDisplay: false)

  @Option var path: String
  @Option var size: Int
  @Option var regionSize: Int
  @Option var objects: Int
  @Flag(help: "Delete the index snapshot first, so the open replays the log.") var replay = false

  func run() async throws {
    _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 1 << 20)
    if replay { unlink(path + "/cache.data.index") }
    let configuration = DiskStoreConfiguration(
      path: path, size: size, regionSize: regionSize, maxObjectSize: 1 << 20)
    // Warm what any store needs (thread pool, runtime) with an empty store elsewhere.
    let warmPath = path + "-warm"
    let warm = try await DiskStore.open(
      configuration: DiskStoreConfiguration(
        path: warmPath, size: 4096 + 4 * (1 << 20), regionSize: 1 << 20, fragmentSize: 64 << 10,
        maxObjectSize: 1 << 20))
    try await warm.close()
    DiskBenchmark.trim()
    let before = DiskBenchmark.residentBytes()
    let start = ContinuousClock.now
    let store = try await DiskStore.open(configuration: configuration)
    let seconds = Measure.seconds(ContinuousClock.now - start)
    DiskBenchmark.trim()
    DiskBenchmark.dumpLargeMappings("probe after open")
    let after = DiskBenchmark.residentBytes()
    var wrong = 0
    for i in stride(from: 0, to: objects, by: max(1, objects / 1000)) {
      guard var hit = try await store.lookup(DiskBenchmark.key("small-\(i)")) else { continue }
      var read = 0
      while let chunk = try await hit.handler.readBody() { read += chunk.readableBytes }
      if read != 1024 { wrong += 1 }
    }
    print("probe.objects=\(store.objectCount)")
    print("probe.seconds=\(seconds)")
    print("probe.rss_before=\(before)")
    print("probe.rss_after=\(after)")
    print("probe.index_bytes=\(store.statistics.indexBytes)")
    print("probe.wrong_sizes=\(wrong)")
    print("probe.corrupt_records=\(store.recoveryReport.corruptRecords)")
    print("probe.from_snapshot=\(store.recoveryReport.fromSnapshot)")
    try await store.close()
    for name in ["cache.data", "cache.data.index"] { unlink(warmPath + "/" + name) }
    rmdir(warmPath)
  }
}
