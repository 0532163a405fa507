import ArgumentParser
import EdgeCDNSimulation
import EdgeCDNStore

/// RAM per tracked key and the cost of admit and access for every eviction policy,
/// from one and from two concurrent tasks.
struct EvictionBenchmark: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eviction",
    abstract: "Bytes per key and ns per admit/access of lru, s3fifo and tinyufo.",
    discussion: """
      bytes_per_key: a manager sized for 1M objects of 1000 bytes replays 4M Zipf(0.8) \
      requests over 4M objects (so ghost and sketch are in steady state); the figure is the \
      bytes of its structures' array and table capacities (what they asked malloc for) per \
      tracked key. admit_ns: admitting distinct keys into a full manager (each admit \
      evicts); access_ns: hits on random tracked keys. threadsN: N tasks at once, each \
      timing its own share; the figure is per operation as each task sees it, the fastest \
      of --repetitions runs.
      """
  )

  @Option(help: "Operations per timing run.")
  var operations = 1_000_000

  @Option(help: "Timing runs per figure; the fastest is reported (the machine is shared).")
  var repetitions = 3

  @Option(help: "Policies, comma-separated.")
  var policy = "lru,s3fifo,tinyufo"

  func run() async throws {
    let policies = try policy.split(separator: ",").map { name throws(ConfigurationError) in
      try EvictionPolicy(parsing: String(name), setting: "--policy")
    }
    var report = BenchReport()
    for policy in policies {
      let memory = measureMemory(policy)
      print("\(policy): \(BenchReport.format(memory.bytesPerKey, decimals: 1)) bytes per key over \(memory.keys) keys")
      report.record("eviction.\(policy).bytes_per_key", memory.bytesPerKey)
      for threads in [1, 2] {
        var admit = Double.infinity
        var access = Double.infinity
        for _ in 0..<max(1, repetitions) {
          admit = min(admit, await timeAdmit(policy, threads: threads))
          access = min(access, await timeAccess(policy, threads: threads))
        }
        print(
          "\(policy) threads \(threads): admit \(BenchReport.format(admit, decimals: 1)) ns, access \(BenchReport.format(access, decimals: 1)) ns"
        )
        report.record("eviction.\(policy).admit_ns.threads\(threads)", admit)
        report.record("eviction.\(policy).access_ns.threads\(threads)", access)
      }
    }
    report.printFigures()
  }

  private static let never = CacheTime(millisecondsSinceEpoch: 0)

  private func measureMemory(_ policy: EvictionPolicy) -> (bytesPerKey: Double, keys: Int) {
    let workload = SyntheticWorkload(exponent: 0.8, requests: 4_000_000, objects: 4_000_000, oneHitWonderShare: 0)
    let sample = workload.generate()
    let manager = policy.makeManager(capacity: 1_000_000 * 1000, shards: 16)
    for i in 0..<sample.requestCount {
      let key = sample.keys[Int(sample.objects[i])]
      if manager.peek(key) {
        manager.access(key, size: 1000, freshUntil: Self.never)
      } else {
        _ = manager.admit(key, size: 1000, freshUntil: Self.never)
      }
    }
    let structures: Double =
      switch manager {
      case let lru as ShardedLRU: lru.bytesPerKey
      case let s3fifo as S3FIFO: s3fifo.bytesPerKey
      case let tinyufo as TinyUFO: tinyufo.bytesPerKey
      default: .nan
      }
    return (structures, manager.totalItems)
  }

  private func keys(_ count: Int, offset: Int) -> [CompactCacheKey] {
    (0..<count).map { Workload.key(for: UInt64(offset + $0)) }
  }

  /// ns per admit: each task admits its own distinct keys into a manager that holds
  /// a tenth of them, so almost every admit also evicts.
  private func timeAdmit(_ policy: EvictionPolicy, threads: Int) async -> Double {
    let perTask = operations / threads
    let manager = policy.makeManager(capacity: perTask * threads / 10 * 1000, shards: 16)
    let batches = (0..<threads).map { keys(perTask, offset: $0 * perTask + 10_000_000) }
    return await timed(threads: threads, operations: perTask) { task in
      for key in batches[task] { _ = manager.admit(key, size: 1000, freshUntil: Self.never) }
    }
  }

  /// ns per access: hits on keys of a manager large enough to hold them all, in a
  /// random order.
  private func timeAccess(_ policy: EvictionPolicy, threads: Int) async -> Double {
    let tracked = 100_000
    let manager = policy.makeManager(capacity: tracked * 1000, shards: 16)
    let all = keys(tracked, offset: 20_000_000)
    for key in all { _ = manager.admit(key, size: 1000, freshUntil: Self.never) }
    let perTask = operations / threads
    let orders: [[Int]] = (0..<threads).map { task in
      var random = SplitMix64(seed: UInt64(task + 1))
      return (0..<perTask).map { _ in Int(random.next() % UInt64(tracked)) }
    }
    return await timed(threads: threads, operations: perTask) { task in
      for i in orders[task] { manager.access(all[i], size: 1000, freshUntil: Self.never) }
    }
  }

  /// Runs `body` in `threads` concurrent tasks; returns mean ns per operation per task.
  private func timed(threads: Int, operations: Int, _ body: @escaping @Sendable (Int) -> Void) async -> Double {
    let clock = ContinuousClock()
    let durations = await withTaskGroup(of: Duration.self) { group in
      for task in 0..<threads {
        group.addTask {
          let start = clock.now
          body(task)
          return clock.now - start
        }
      }
      return await group.reduce(into: [Duration]()) { $0.append($1) }
    }
    let nanoseconds = durations.map { Measure.seconds($0) * 1e9 }
    return nanoseconds.reduce(0, +) / Double(durations.count) / Double(max(1, operations))
  }
}
