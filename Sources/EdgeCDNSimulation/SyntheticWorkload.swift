#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Seeded CDN-like request streams: Zipf popularity over a catalogue, one-hit wonders
/// mixed in, and heavy-tailed (Pareto) object sizes, so miss ratios are reproducible
/// without shipping traces.
public struct SyntheticWorkload: Sendable {
  /// Zipf exponent: 0.8 is a flat CDN mix, 1.0 and above a skewed one.
  public var exponent: Double
  /// Requests to generate.
  public var requests: Int
  /// Objects in the popular catalogue.
  public var objects: Int
  /// Share of requests for objects seen only once.
  public var oneHitWonderShare: Double = 0.1
  /// Pareto sizes: scale (the smallest size), shape, and a cap.
  public var minimumSize = 1024
  public var sizeShape = 1.2
  public var maximumSize = 16 << 20
  public var seed: UInt64 = 42

  public init(exponent: Double, requests: Int, objects: Int, oneHitWonderShare: Double = 0.1, seed: UInt64 = 42) {
    self.exponent = exponent
    self.requests = requests
    self.objects = objects
    self.oneHitWonderShare = oneHitWonderShare
    self.seed = seed
  }

  public var name: String {
    "zipf:\(exponent) requests=\(requests) objects=\(objects) one-hit=\(oneHitWonderShare) seed=\(seed)"
  }

  public func generate() -> Workload {
    var random = SplitMix64(seed: seed)
    // Cumulative popularity of ranks 1...objects; a request draws a uniform number
    // and binary-searches it (inversion), exact for any exponent.
    var cumulative = [Double](repeating: 0, count: objects)
    var total = 0.0
    for rank in 0..<objects {
      total += 1.0 / pow(Double(rank + 1), exponent)
      cumulative[rank] = total
    }
    // Objects get numbers in order of first request, as a trace would.
    var numberOfObject = [UInt32](repeating: UInt32.max, count: objects)
    var sizeOfObject: [UInt32] = []
    var workload = Workload()
    workload.name = name
    workload.objects.reserveCapacity(requests)
    workload.sizes.reserveCapacity(requests)
    for _ in 0..<requests {
      let number: UInt32
      if random.nextUnit() < oneHitWonderShare {
        number = UInt32(workload.keys.count)
        sizeOfObject.append(drawSize(&random))
      } else {
        let target = random.nextUnit() * total
        var low = 0
        var high = objects - 1
        while low < high {
          let middle = (low + high) / 2
          if cumulative[middle] < target { low = middle + 1 } else { high = middle }
        }
        if numberOfObject[low] == UInt32.max {
          numberOfObject[low] = UInt32(workload.keys.count)
          sizeOfObject.append(drawSize(&random))
        }
        number = numberOfObject[low]
      }
      workload.append(object: number, size: Int(sizeOfObject[Int(number)]))
    }
    return workload
  }

  private func drawSize(_ random: inout SplitMix64) -> UInt32 {
    let u = max(random.nextUnit(), 1e-12)
    let size = Double(minimumSize) / pow(u, 1.0 / sizeShape)
    return UInt32(min(Double(maximumSize), size))
  }
}
