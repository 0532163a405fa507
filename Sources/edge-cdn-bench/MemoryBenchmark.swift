import ArgumentParser
import CoreMetrics
import EdgeCDNStore
import NIOCore
import Prometheus

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// `edge-cdn-bench memory`: the RAM tier's hot paths, as the proxy drives them.
///
/// A hit is lookup + read to the end + finish; a miss is missHandler + write with eof
/// + finish. Each runs from 1 and 2 concurrent tasks over a fixed key set, so a
/// figure includes the shard locks, the budget CAS and the eviction manager's work.
struct MemoryBenchmark: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "memory",
    abstract: "RAM tier: 1 KiB hits, 1 KiB and 1 MiB miss writes, from 1 and 2 tasks.")

  @Option(help: "Seconds each figure is measured for (after a warm-up of a tenth of it).")
  var seconds: Double = 1.0

  @Option(help: "Paired batches of 256 hits for the overhead figures (the median ratio is printed).")
  var batches: Int = 2001

  @Option(help: "Distinct keys the hit benchmark cycles over.")
  var keys: Int = 4096

  @Option(help: "Objects of 1 KiB written for the RAM-per-object figures (0 skips them).")
  var footprintObjects: Int = 100_000

  @Flag(help: "Build the RAM-per-object figures' field values at run time, as a parser does, not from literals.")
  var parsedFields = false

  @Option(
    help: ArgumentHelp("Only loop 1 KiB hits on `bare`, `noop` or `prometheus` (for a profiler).", visibility: .hidden))
  var profile: String?

  func validate() throws {
    guard seconds > 0, batches >= 1, keys >= 1, footprintObjects >= 0 else {
      throw ValidationError("--seconds must be > 0, --batches >= 1, --keys >= 1 and --footprint-objects >= 0")
    }
  }

  func run() async throws {
    var report = BenchReport()
    // First, in a fresh heap: what the other figures allocate and free would blur it.
    if profile == nil, footprintObjects > 0 {
      let footprint = try await MemoryFootprint.measure(objects: footprintObjects, parsedFields: parsedFields)
      report.record("memory.footprint_objects", footprint.objects)
      report.record("memory.rss_bytes_per_object", footprint.residentBytesPerObject, decimals: 0)
      report.record("memory.charged_bytes_per_object", footprint.chargedBytesPerObject, decimals: 0)
      report.record(
        "memory.rss_over_charged", footprint.residentBytesPerObject / max(footprint.chargedBytesPerObject, 1),
        decimals: 2)
      report.record("memory.charged.entry_bytes_per_object", footprint.parts.entry)
      report.record("memory.charged.meta_bytes_per_object", footprint.parts.meta)
      report.record("memory.charged.body_bytes_per_object", footprint.parts.body)
    }
    let budget = Duration.milliseconds(Int64(seconds * 1000))
    let store = try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: 256 << 20, maxObjectSize: 8 << 20))
    let meta = Self.meta()
    let keySet = (0..<keys).map { CacheKey(namespace: "bench", primary: "/object/\($0)") }
    for key in keySet { try await Self.write(store, key, meta: meta, body: ByteBuffer(repeating: 1, count: 1024)) }

    if let profile {
      let factory: any MetricsFactory =
        profile == "prometheus"
        ? PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()) : NOOPMetricsHandler.instance
      let wrapped = InstrumentedStorage(store, metrics: StoreMetrics(tier: "memory", factory: factory))
      let figure = try await Self.measure(tasks: 1, for: budget) { task, i in
        if profile == "bare" {
          try await Self.hit(store, keySet[(i &* 7 &+ task) % keySet.count])
        } else {
          try await Self.hit(wrapped, keySet[(i &* 7 &+ task) % keySet.count])
        }
      }
      report.record(figure, as: "memory.hit_1k.profile_\(profile)")
      report.printFigures()
      return
    }

    for tasks in [1, 2] {
      let hit = try await Self.measure(tasks: tasks, for: budget) { task, i in
        try await Self.hit(store, keySet[(i &* 7 &+ task) % keySet.count])
      }
      report.record(hit, as: "memory.hit_1k.tasks\(tasks)")
    }

    // The same hit bare, through InstrumentedStorage with no metrics backend (what a
    // process that bootstraps none runs), and with a Prometheus registry behind it, in
    // paired batches timed by thread CPU time (PairedHits says why).
    // metrics_overhead_pct is the cost of recording (Prometheus against none);
    // wrapper_overhead_pct the cost of the wrapper itself (none against bare).
    let prometheus = InstrumentedStorage(
      store,
      metrics: StoreMetrics(tier: "memory", factory: PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())))
    let noop = InstrumentedStorage(store, metrics: StoreMetrics(tier: "memory", factory: NOOPMetricsHandler.instance))
    let metrics = try await PairedHits.measure(baseline: noop, candidate: prometheus, keys: keySet, batches: batches)
    let wrapper = try await PairedHits.measure(baseline: store, candidate: noop, keys: keySet, batches: batches)
    report.record("memory.hit_1k.metrics_overhead_pct", metrics.cpuPercent, decimals: 1)
    report.record("memory.hit_1k.metrics_overhead_wall_pct", metrics.wallPercent, decimals: 1)
    report.record("memory.hit_1k.wrapper_overhead_pct", wrapper.cpuPercent, decimals: 1)
    report.record("memory.hit_1k.bare.cpu_ns_per_hit", wrapper.baselineCPUNanoseconds, decimals: 1)
    report.record("memory.hit_1k.noop.cpu_ns_per_hit", metrics.baselineCPUNanoseconds, decimals: 1)
    report.record("memory.hit_1k.prometheus.cpu_ns_per_hit", metrics.candidateCPUNanoseconds, decimals: 1)
    report.record("memory.hit_1k.overhead_pairs", min(metrics.pairs, wrapper.pairs))

    for (name, size) in [("miss_1k", 1024), ("miss_1m", 1 << 20)] {
      let body = ByteBuffer(repeating: 2, count: size)
      for tasks in [1, 2] {
        let miss = try await Self.measure(tasks: tasks, for: budget) { task, i in
          // Distinct keys so each write is a real insert; the budget evicts old ones.
          let key = CacheKey(namespace: "bench-\(name)-\(task)", primary: "/w/\(i)")
          try await Self.write(store, key, meta: meta, body: body)
        }
        report.record(miss, as: "memory.\(name).tasks\(tasks)")
      }
    }
    report.printFigures()
  }

  static func meta() -> CacheMeta {
    let now = CacheTime.now()
    return CacheMeta(
      freshUntil: now.adding(seconds: 3600), created: now,
      response: .init(status: 200, fields: [.init("content-type", "application/octet-stream")]))
  }

  /// lookup + read to the end + finish: what the proxy does for a hit.
  static func hit(_ store: some Storage, _ key: CacheKey) async throws {
    guard var found = try await store.lookup(key) else { throw BenchError.unexpectedMiss }
    while try await found.handler.readBody() != nil {}
    try await found.handler.finish()
  }

  static func write(_ store: MemoryStore, _ key: CacheKey, meta: CacheMeta, body: ByteBuffer) async throws {
    let handler = try await store.missHandler(for: key, meta: meta)
    try await handler.writeBody(body, eof: true)
    _ = try await handler.finish()
  }

  /// Runs `operation` in `tasks` concurrent tasks for about `duration` and returns the
  /// aggregate rate. Each task checks the clock every 64 operations so the clock read
  /// stays out of the figure.
  static func measure(
    tasks: Int, for duration: Duration,
    _ operation: @escaping @Sendable (_ task: Int, _ iteration: Int) async throws -> Void
  ) async throws -> Throughput {
    let clock = ContinuousClock()
    // Warm-up: fills caches and lets the allocator settle.
    _ = try await runTasks(tasks, until: clock.now.advanced(by: duration / 10), clock: clock, operation)
    let cpuStart = ProcessCPUTime.nanoseconds()
    let start = clock.now
    let operations = try await runTasks(tasks, until: start.advanced(by: duration), clock: clock, operation)
    let elapsed = start.duration(to: clock.now)
    return Throughput(
      operations: operations, elapsed: elapsed, cpuNanoseconds: ProcessCPUTime.nanoseconds() - cpuStart)
  }

  private static func runTasks(
    _ tasks: Int, until deadline: ContinuousClock.Instant, clock: ContinuousClock,
    _ operation: @escaping @Sendable (Int, Int) async throws -> Void
  ) async throws -> Int {
    try await withThrowingTaskGroup(of: Int.self) { group in
      for task in 0..<tasks {
        group.addTask {
          var iteration = 0
          while true {
            for _ in 0..<64 {
              try await operation(task, iteration)
              iteration += 1
            }
            if clock.now >= deadline { return iteration }
          }
        }
      }
      return try await group.reduce(0, +)
    }
  }
}

enum BenchError: Error, CustomStringConvertible {
  case unexpectedMiss

  var description: String {
    switch self {
    case .unexpectedMiss: "a key written before the run was not found: the budget is too small for the key set"
    }
  }
}

/// Operations done in a measured time, reported as ns/op (wall time per operation
/// across all tasks) and ops/s.
struct Throughput {
  var operations: Int
  var elapsed: Duration
  /// CPU time the whole process used meanwhile (user + system). On a shared machine
  /// wall time counts the time we were not scheduled; CPU time does not, so ratios of
  /// two variants are compared on CPU time per operation.
  var cpuNanoseconds: Int64 = 0

  var seconds: Double { Measure.seconds(elapsed) }

  var opsPerSecond: Double { Double(operations) / seconds }
  var nanosecondsPerOperation: Double { seconds * 1e9 / Double(max(operations, 1)) }
  var cpuNanosecondsPerOperation: Double { Double(cpuNanoseconds) / Double(max(operations, 1)) }
}

extension BenchReport {
  mutating func record(_ throughput: Throughput, as prefix: String) {
    record("\(prefix).ns_per_op", throughput.nanosecondsPerOperation, decimals: 1)
    record("\(prefix).ops_s", throughput.opsPerSecond, decimals: 0)
  }
}
