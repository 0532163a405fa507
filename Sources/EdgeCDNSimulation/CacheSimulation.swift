public import EdgeCDNStore

/// Replays a workload through one eviction manager, as a cache would drive it.
public enum CacheSimulation {
  public struct Result: Sendable {
    public var objectMissRatio: Double
    public var byteMissRatio: Double
    public var requestsPerSecond: Double
  }

  public static func run(_ workload: Workload, manager: any EvictionManager) -> Result {
    let never = CacheTime(millisecondsSinceEpoch: 0)
    var misses = 0
    var missBytes = 0
    var bytes = 0
    let clock = ContinuousClock()
    let start = clock.now
    for i in 0..<workload.requestCount {
      let key = workload.keys[Int(workload.objects[i])]
      let size = Int(workload.sizes[i])
      bytes += size
      if manager.peek(key) {
        manager.access(key, size: size, freshUntil: never)
      } else {
        misses += 1
        missBytes += size
        _ = manager.admit(key, size: size, freshUntil: never)
      }
    }
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    let requests = max(1, workload.requestCount)
    return Result(
      objectMissRatio: Double(misses) / Double(requests),
      byteMissRatio: bytes == 0 ? 0 : Double(missBytes) / Double(bytes),
      requestsPerSecond: seconds > 0 ? Double(workload.requestCount) / seconds : 0)
  }
}
