import EdgeCDNStore
import Foundation

/// The cost of one store's 1 KiB hit against another's, measured so that a shared,
/// loaded machine does not drown it.
///
/// Batches of hits on the two stores run back to back (which goes first alternates) and
/// are timed by the calling thread's CPU time; the median of the per-pair ratios is the
/// figure. Why: rounds of half a second by process CPU or wall time gave this bench's
/// metrics overhead anywhere from -3% to 29% for one binary (2026-11-27), because other
/// processes' work, cache pollution and frequency changes land unevenly on long rounds.
/// A pair of 256-hit batches takes about half a millisecond, so both halves of a pair see
/// the same machine; thread CPU time leaves out the time another process held the core.
/// A RAM hit never suspends, so a batch runs on one thread; a pair whose task moved to
/// another thread anyway is dropped, as its CPU clock would be another thread's.
///
/// Generic over both stores so that each side's hit is specialised, as the proxy's is.
struct PairedHits {
  /// Median over pairs of (candidate thread CPU time / baseline thread CPU time - 1), in %.
  var cpuPercent: Double
  /// The same with wall-clock time, for comparison with earlier figures.
  var wallPercent: Double
  /// Median thread CPU time of one hit, baseline and candidate.
  var baselineCPUNanoseconds: Double
  var candidateCPUNanoseconds: Double
  /// Pairs kept.
  var pairs: Int

  static func measure<Baseline: Storage, Candidate: Storage>(
    baseline: Baseline, candidate: Candidate, keys: [CacheKey], batches: Int, batchSize: Int = 256
  ) async throws -> PairedHits {
    let clock = ContinuousClock()
    var cpuRatios: [Double] = []
    var wallRatios: [Double] = []
    var baselineCPU: [Double] = []
    var candidateCPU: [Double] = []
    cpuRatios.reserveCapacity(batches)
    wallRatios.reserveCapacity(batches)
    var index = 0
    for batch in 0..<batches {
      var baselineTime = Duration.zero
      var candidateTime = Duration.zero
      var baselineNanos: Int64 = 0
      var candidateNanos: Int64 = 0
      let thread = pthread_self()
      for order in 0..<2 {
        let start = clock.now
        let cpuStart = ThreadCPUTime.nanoseconds()
        if (order == 0) == (batch % 2 == 0) {
          for _ in 0..<batchSize {
            try await MemoryBenchmark.hit(baseline, keys[index % keys.count])
            index &+= 7
          }
          baselineNanos = ThreadCPUTime.nanoseconds() - cpuStart
          baselineTime = clock.now - start
        } else {
          for _ in 0..<batchSize {
            try await MemoryBenchmark.hit(candidate, keys[index % keys.count])
            index &+= 7
          }
          candidateNanos = ThreadCPUTime.nanoseconds() - cpuStart
          candidateTime = clock.now - start
        }
      }
      wallRatios.append(Measure.seconds(candidateTime) / Measure.seconds(baselineTime))
      guard pthread_equal(thread, pthread_self()) != 0, baselineNanos > 0, candidateNanos > 0 else { continue }
      cpuRatios.append(Double(candidateNanos) / Double(baselineNanos))
      baselineCPU.append(Double(baselineNanos) / Double(batchSize))
      candidateCPU.append(Double(candidateNanos) / Double(batchSize))
    }
    return PairedHits(
      cpuPercent: (Measure.median(cpuRatios) - 1) * 100, wallPercent: (Measure.median(wallRatios) - 1) * 100,
      baselineCPUNanoseconds: Measure.median(baselineCPU), candidateCPUNanoseconds: Measure.median(candidateCPU),
      pairs: cpuRatios.count)
  }
}

/// The calling thread's CPU time, from `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`
/// (nanosecond resolution, where `getrusage(RUSAGE_THREAD)` has microseconds).
enum ThreadCPUTime {
  static func nanoseconds() -> Int64 {
    var time = timespec()
    guard clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time) == 0 else { return 0 }
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
  }
}
