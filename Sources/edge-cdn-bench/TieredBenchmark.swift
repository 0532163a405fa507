import ArgumentParser
import EdgeCDNStore
import Foundation
import NIOCore
import Synchronization

/// `edge-cdn-bench tiered`: what the tiered store adds to a hit, by the tier that serves it.
///
/// The RAM figure times batches of 256 1 KiB hits through TieredStore and on the
/// MemoryStore alone, back to back (which goes first alternates), by the thread's CPU
/// time, and prints the median of the per-pair ratios (`PairedHits`): the cost of the
/// composition, which must stay within 10%. Rounds of half a second by wall time on this shared
/// 2-core machine gave 12% to 39% for the same binary. Disk and shared hits are measured with
/// promotion and fills off, so every hit really reaches that tier.
struct TieredBenchmark: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tiered",
    abstract: "Tiered store: RAM-hit overhead against MemoryStore, hits served from disk and from the shared tier.")

  @Option(help: "Seconds each figure is measured for (after a warm-up of a tenth of it).")
  var seconds: Double = 1.0

  @Option(help: "Paired batches of 256 hits for the RAM overhead figure (the median ratio is printed).")
  var batches: Int = 2001

  @Option(help: "Distinct keys each hit benchmark cycles over.")
  var keys: Int = 1024

  func validate() throws {
    guard seconds > 0, batches >= 1, keys >= 1 else {
      throw ValidationError("--seconds must be > 0, --batches >= 1 and --keys >= 1")
    }
  }

  func run() async throws {
    var report = BenchReport()
    let budget = Duration.milliseconds(Int64(seconds * 1000))
    let meta = MemoryBenchmark.meta()
    let keySet = (0..<keys).map { CacheKey(namespace: "bench", primary: "/object/\($0)") }
    let small = ByteBuffer(repeating: 1, count: 1024)
    let large = ByteBuffer(repeating: 2, count: 64 << 10)

    // 1. RAM hits: TieredStore over the MemoryStore against the MemoryStore alone.
    let memory = try MemoryStore(configuration: MemoryStoreConfiguration(byteBudget: 256 << 20, maxObjectSize: 8 << 20))
    for key in keySet { try await Self.write(memory, key, meta: meta, body: small) }
    let tiered = TieredStore<MemoryStore, DiskStore>(memory: memory, disk: nil)
    let tieredHit = try await MemoryBenchmark.measure(tasks: 1, for: budget) { task, i in
      try await MemoryBenchmark.hit(tiered, keySet[(i &* 7 &+ task) % keySet.count])
    }
    report.record(tieredHit, as: "tiered.hit_1k.memory")
    let overhead = try await PairedHits.measure(baseline: memory, candidate: tiered, keys: keySet, batches: batches)
    report.record("tiered.hit_1k_overhead_pct", overhead.cpuPercent, decimals: 1)
    report.record("tiered.hit_1k_overhead_wall_pct", overhead.wallPercent, decimals: 1)
    report.record("tiered.hit_1k.memory_bare.cpu_ns_per_hit", overhead.baselineCPUNanoseconds, decimals: 1)
    report.record("tiered.hit_1k.memory_tiered.cpu_ns_per_hit", overhead.candidateCPUNanoseconds, decimals: 1)
    report.record("tiered.hit_1k_overhead_pairs", overhead.pairs)

    // 2. Disk hits (page cache warm), no promotion.
    let folder = "/tmp/edge-cdn-bench-tiered-\(ProcessInfo.processInfo.processIdentifier)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let disk = try await DiskStore.open(
      configuration: DiskStoreConfiguration(
        path: folder, size: 4096 + 160 * (1 << 20), regionSize: 1 << 20, fragmentSize: 64 << 10, maxObjectSize: 1 << 20)
    )
    let diskKeys = Array(keySet.prefix(256))
    for key in diskKeys {
      try await Self.write(disk, key, meta: meta, body: small)
      try await Self.write(disk, Self.largeKey(key), meta: meta, body: large)
    }
    try await disk.flush()
    let overDisk = TieredStore(
      memory: try MemoryStore(configuration: MemoryStoreConfiguration(byteBudget: 64 << 20)), disk: disk,
      configuration: TieredStoreConfiguration(promotion: .never))
    for tasks in [1, 2] {
      let hit1k = try await MemoryBenchmark.measure(tasks: tasks, for: budget) { task, i in
        try await MemoryBenchmark.hit(overDisk, diskKeys[(i &* 7 &+ task) % diskKeys.count])
      }
      report.record(hit1k, as: "tiered.hit_1k.disk.tasks\(tasks)")
      report.record("tiered.hit_1k.disk.tasks\(tasks).cpu_ns_per_op", hit1k.cpuNanosecondsPerOperation)
    }
    let hit64k = try await MemoryBenchmark.measure(tasks: 1, for: budget) { task, i in
      try await MemoryBenchmark.hit(overDisk, Self.largeKey(diskKeys[(i &* 7 &+ task) % diskKeys.count]))
    }
    report.record(hit64k, as: "tiered.hit_64k.disk.tasks1")
    report.record("tiered.hit_64k.disk.tasks1.cpu_ns_per_op", hit64k.cpuNanosecondsPerOperation)
    try await disk.close()

    // 3. Shared-tier hits (an in-process tier: the cost of the client, its deadlines
    //    and the composition, not of a network), no fill. The process's CPU time per
    //    hit is printed too: a shared hit hops between threads, and on a loaded machine
    //    its wall time is mostly waiting for a core.
    let shared = InMemorySharedTier()
    let sharedKeys = Array(keySet.prefix(256))
    for key in sharedKeys {
      try await shared.store(key, meta: meta, body: OneChunk(small))
      try await shared.store(Self.largeKey(key), meta: meta, body: OneChunk(large))
    }
    let overShared = TieredStore<MemoryStore, DiskStore>(
      memory: try MemoryStore(configuration: MemoryStoreConfiguration(byteBudget: 64 << 20)), disk: nil,
      shared: shared, configuration: TieredStoreConfiguration(fillFromShared: false, writeBehind: false))
    for tasks in [1, 2] {
      let hit1k = try await MemoryBenchmark.measure(tasks: tasks, for: budget) { task, i in
        try await MemoryBenchmark.hit(overShared, sharedKeys[(i &* 7 &+ task) % sharedKeys.count])
      }
      report.record(hit1k, as: "tiered.hit_1k.shared.tasks\(tasks)")
      report.record("tiered.hit_1k.shared.tasks\(tasks).cpu_ns_per_op", hit1k.cpuNanosecondsPerOperation)
    }
    let shared64k = try await MemoryBenchmark.measure(tasks: 1, for: budget) { task, i in
      try await MemoryBenchmark.hit(overShared, Self.largeKey(sharedKeys[(i &* 7 &+ task) % sharedKeys.count]))
    }
    report.record(shared64k, as: "tiered.hit_64k.shared.tasks1")
    report.record("tiered.hit_64k.shared.tasks1.cpu_ns_per_op", shared64k.cpuNanosecondsPerOperation)
    await overShared.shutdown()
    report.printFigures()
  }

  static func largeKey(_ key: CacheKey) -> CacheKey {
    CacheKey(namespace: Array("bench-large".utf8), primary: key.primary)
  }

  static func write<S: Storage>(_ store: S, _ key: CacheKey, meta: CacheMeta, body: ByteBuffer) async throws {
    let handler = try await store.missHandler(for: key, meta: meta)
    try await handler.writeBody(body, eof: true)
    _ = try await handler.finish()
  }
}

/// A body of one chunk, for filling the shared tier before the run.
final class OneChunk: SharedBodyStream {
  let chunk: ByteBuffer
  let taken = Mutex(false)

  init(_ chunk: ByteBuffer) { self.chunk = chunk }

  func next() async throws(CacheError) -> ByteBuffer? {
    taken.withLock { taken in
      defer { taken = true }
      return taken ? nil : chunk
    }
  }

  func cancel() async {}
}
