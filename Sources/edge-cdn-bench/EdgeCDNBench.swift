import ArgumentParser

/// Benchmarks of the store, one subcommand per area. Each prints human-readable
/// progress first and, last, one `name=value` line per figure for scripts to parse.
@main
struct EdgeCDNBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "edge-cdn-bench",
    abstract: "Benchmarks of edge-cdn-store. Run in release builds: swift run -c release edge-cdn-bench <area>.",
    subcommands: [
      MemoryBenchmark.self, SimulateCommand.self, EvictionBenchmark.self, DiskBenchmark.self, DiskCrashWriter.self,
      DiskReopenProbe.self, TieredBenchmark.self, OriginClientBenchmark.self, ProxyFootprint.self,
    ]
  )
}
