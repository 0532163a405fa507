import ArgumentParser
import EdgeCDNSimulation
import EdgeCDNStore

/// Replays a request trace (or a seeded synthetic one) through eviction managers and
/// reports miss ratios: the figure that decides which policy a store should run.
struct SimulateCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "simulate",
    abstract: "Replays a trace through an eviction policy and prints object and byte miss ratios.",
    discussion: """
      Each request is a hit when the manager tracks the key (then access), else a miss \
      (then admit, dropping the victims). Sizes are bytes or percentages of the footprint \
      (unique bytes), and lists run every combination: --policy lru,s3fifo --cache-size 0.1%,1%.
      """
  )

  @Option(help: "A CSV trace: timestamp,key,size per line.")
  var trace: String?

  @Option(help: "A synthetic workload instead of a trace: zipf:EXPONENT, e.g. zipf:1.0.")
  var synthetic: String?

  @Option(help: "Synthetic: requests to generate.")
  var requests = 1_000_000

  @Option(help: "Synthetic: objects in the Zipf catalogue.")
  var objects = 200_000

  @Option(help: "Synthetic: share of requests for one-hit wonders.")
  var oneHitWonders = 0.1

  @Option(help: "Synthetic: random seed.")
  var seed: UInt64 = 42

  @Option(help: "Policies, comma-separated: lru, s3fifo, tinyufo.")
  var policy = "lru"

  @Option(help: "Cache sizes, comma-separated: bytes or a percentage of the footprint (1%).")
  var cacheSize = "1%"

  @Option(help: "Shards of each manager.")
  var shards = 16

  func run() async throws {
    let policies = try policy.split(separator: ",").map { name throws(ConfigurationError) in
      try EvictionPolicy(parsing: String(name), setting: "--policy")
    }
    let workload: Workload
    if let trace {
      workload = try TraceReader.read(path: trace)
    } else if let synthetic {
      guard synthetic.hasPrefix("zipf:"), let exponent = Double(synthetic.dropFirst(5)), exponent >= 0 else {
        throw ValidationError("--synthetic must be zipf:EXPONENT, e.g. zipf:0.8; got \(synthetic)")
      }
      workload = SyntheticWorkload(
        exponent: exponent, requests: requests, objects: objects, oneHitWonderShare: oneHitWonders, seed: seed
      ).generate()
    } else {
      throw ValidationError("give --trace FILE or --synthetic zipf:EXPONENT")
    }
    let sizes = try cacheSize.split(separator: ",").map {
      try Self.parseSize(String($0), footprint: workload.footprint)
    }
    print(
      "workload \(workload.name): \(workload.requestCount) requests, \(workload.keys.count) objects, footprint \(workload.footprint) bytes"
    )
    var report = BenchReport()
    let single = policies.count == 1 && sizes.count == 1
    for size in sizes {
      for policy in policies {
        let result = CacheSimulation.run(workload, manager: policy.makeManager(capacity: size.bytes, shards: shards))
        print(
          "\(policy) at \(size.label) (\(size.bytes) bytes): object miss \(BenchReport.format(result.objectMissRatio, decimals: 4)), byte miss \(BenchReport.format(result.byteMissRatio, decimals: 4)), \(Int(result.requestsPerSecond)) requests/s"
        )
        let prefix = single ? "simulate" : "simulate.\(policy).\(size.label)"
        report.record("\(prefix).object_miss_ratio", result.objectMissRatio, decimals: 4)
        report.record("\(prefix).byte_miss_ratio", result.byteMissRatio, decimals: 4)
        report.record("\(prefix).requests_per_s", result.requestsPerSecond, decimals: 0)
      }
    }
    report.printFigures()
  }

  struct CacheSize {
    var bytes: Int
    var label: String
  }

  static func parseSize(_ text: String, footprint: Int) throws(ValidationError) -> CacheSize {
    if text.hasSuffix("%") {
      guard let percent = Double(text.dropLast()), percent > 0, percent <= 100 else {
        throw ValidationError("--cache-size \(text): a percentage must be in (0, 100]")
      }
      return CacheSize(bytes: max(1, Int(Double(footprint) * percent / 100)), label: text)
    }
    guard let bytes = Int(text), bytes > 0 else {
      throw ValidationError("--cache-size \(text): give bytes (> 0) or a percentage such as 1%")
    }
    return CacheSize(bytes: bytes, label: text)
  }
}
