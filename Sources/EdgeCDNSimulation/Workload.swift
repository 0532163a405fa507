public import EdgeCDNStore

/// A request sequence held compactly for replay: each request is an object number and
/// a size, and each object has one key. Loading it once lets the simulator measure the
/// policy alone, not parsing, and compute the footprint before the replay.
public struct Workload: Sendable {
  /// Object number of each request.
  public var objects: [UInt32] = []
  /// Size in bytes of each request.
  public var sizes: [UInt32] = []
  /// Key of each object.
  public var keys: [CompactCacheKey] = []
  /// Unique bytes: the sum of each object's size at its first request.
  public var footprint = 0
  public var name = ""

  public init() {}

  public var requestCount: Int { objects.count }

  /// Appends a request, registering the object when it is new.
  public mutating func append(object: UInt32, size: Int) {
    let clamped = UInt32(clamping: max(0, size))
    if Int(object) == keys.count {
      keys.append(Self.key(for: UInt64(object)))
      footprint += Int(clamped)
    }
    objects.append(object)
    sizes.append(clamped)
  }

  /// A uniform 128-bit name for object `n`, so shards and hash tables see what
  /// BLAKE2b digests would give them, without hashing a URL per request.
  public static func key(for n: UInt64) -> CompactCacheKey {
    var mixer = SplitMix64(seed: n &* 0x9E37_79B9_7F4A_7C15 ^ 0x5EED)
    return CompactCacheKey(combinedHash: CacheHash(high: mixer.next(), low: mixer.next()))
  }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and seedable, so that a synthetic
/// workload is the same on every run and machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A double in [0, 1).
  public mutating func nextUnit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
}
