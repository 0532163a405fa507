/// The full key of a cached object, as pingora's `CacheKey`.
///
/// The hashes are computed once, at construction, because every tier and the
/// eviction manager need them and BLAKE2b costs far more than passing 32 bytes.
public struct CacheKey: Hashable, Sendable, CustomStringConvertible {
  /// Separates tenants or caches sharing one store (pingora's namespace).
  public let namespace: [UInt8]
  /// Usually host + path + query: what identifies the resource.
  public let primary: [UInt8]
  /// The secondary key that Vary produces, already hashed; nil for no variance.
  public let variance: CacheHash?
  /// Who owns the asset, for accounting; not part of the hash.
  public let userTag: String
  /// BLAKE2b-128(namespace ‖ primary).
  public let primaryHash: CacheHash
  /// BLAKE2b-128(primaryHash ‖ variance) with a variance, else `primaryHash`: the object's name.
  public let combinedHash: CacheHash

  public init(namespace: [UInt8] = [], primary: [UInt8], variance: CacheHash? = nil, userTag: String = "") {
    self.namespace = namespace
    self.primary = primary
    self.variance = variance
    self.userTag = userTag
    let primaryHash = CacheHash.blake2b128(namespace, primary)
    self.primaryHash = primaryHash
    if let variance {
      self.combinedHash = CacheHash.blake2b128(primaryHash.bytes, variance.bytes)
    } else {
      self.combinedHash = primaryHash
    }
  }

  public init(namespace: String = "", primary: String, variance: CacheHash? = nil, userTag: String = "") {
    self.init(namespace: Array(namespace.utf8), primary: Array(primary.utf8), variance: variance, userTag: userTag)
  }

  /// The same resource with another variance (a Vary secondary key).
  public func withVariance(_ variance: CacheHash?) -> CacheKey {
    CacheKey(namespace: namespace, primary: primary, variance: variance, userTag: userTag)
  }

  /// What eviction managers keep and what purge receives.
  public var compact: CompactCacheKey {
    CompactCacheKey(primary: primaryHash, variance: variance, userTag: userTag)
  }

  public var description: String {
    "CacheKey(\(String(decoding: primary, as: UTF8.self)), hash \(combinedHash.hex))"
  }
}

/// The key without its readable parts: what eviction managers store and purge takes.
/// A store must be able to find an object from it alone, through `combinedHash`.
public struct CompactCacheKey: Hashable, Sendable, CustomStringConvertible {
  public let primary: CacheHash
  public let variance: CacheHash?
  public let userTag: String
  public let combinedHash: CacheHash

  public init(primary: CacheHash, variance: CacheHash? = nil, userTag: String = "") {
    self.primary = primary
    self.variance = variance
    self.userTag = userTag
    if let variance {
      self.combinedHash = CacheHash.blake2b128(primary.bytes, variance.bytes)
    } else {
      self.combinedHash = primary
    }
  }

  public var description: String { "CompactCacheKey(\(combinedHash.hex))" }

  // Identity is the object's name: two compact keys naming the same object are equal
  // whatever their user tags.
  public static func == (lhs: CompactCacheKey, rhs: CompactCacheKey) -> Bool {
    lhs.combinedHash == rhs.combinedHash
  }

  public func hash(into hasher: inout Hasher) { hasher.combine(combinedHash) }
}

extension CompactCacheKey {
  /// A compact key known only by its object name, as eviction managers that keep
  /// just 16 bytes per key return it. Stores find objects by `combinedHash`, so it
  /// purges the same object; the user tag is not kept.
  public init(combinedHash: CacheHash) {
    self.init(primary: combinedHash)
  }
}
