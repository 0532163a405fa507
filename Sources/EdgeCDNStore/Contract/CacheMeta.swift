/// What a store keeps beside the body: freshness, the stored response header and
/// extensions. Stores treat it as a blob they must return byte-exact; its binary
/// encoding (`CacheMeta+Encoding.swift`) is what goes to disk and to shared tiers.
public struct CacheMeta: Hashable, Sendable {
  /// Until when the response is fresh (RFC 9111 freshness lifetime, absolute).
  public var freshUntil: CacheTime
  /// When the response was first stored.
  public var created: CacheTime
  /// When it was last revalidated (equals `created` until a 304 refreshes it).
  public var updated: CacheTime
  /// How long past `freshUntil` it may be served while a refresh runs (RFC 5861).
  public var staleWhileRevalidateSeconds: UInt32
  /// How long past `freshUntil` it may be served when the origin fails (RFC 5861).
  public var staleIfErrorSeconds: UInt32
  /// The Vary secondary key this variant was stored under, if any.
  public var variance: CacheHash?
  /// The stored response status line and header fields.
  public var response: ResponseHeader
  /// Opaque bytes for the cache layer (pingora's extensions); stored byte-exact.
  public var extensions: [UInt8]

  public init(
    freshUntil: CacheTime,
    created: CacheTime,
    updated: CacheTime? = nil,
    staleWhileRevalidateSeconds: UInt32 = 0,
    staleIfErrorSeconds: UInt32 = 0,
    variance: CacheHash? = nil,
    response: ResponseHeader,
    extensions: [UInt8] = []
  ) {
    self.freshUntil = freshUntil
    self.created = created
    self.updated = updated ?? created
    self.staleWhileRevalidateSeconds = staleWhileRevalidateSeconds
    self.staleIfErrorSeconds = staleIfErrorSeconds
    self.variance = variance
    self.response = response
    self.extensions = extensions
  }

  /// Whether the response is fresh at `now`.
  public func isFresh(at now: CacheTime) -> Bool { now < freshUntil }

  /// Whether, stale at `now`, it may still be served while revalidating in the background.
  public func isWithinStaleWhileRevalidate(at now: CacheTime) -> Bool {
    now < freshUntil.adding(seconds: Int64(staleWhileRevalidateSeconds))
  }

  /// Whether, stale at `now`, it may still be served because the origin failed.
  public func isWithinStaleIfError(at now: CacheTime) -> Bool {
    now < freshUntil.adding(seconds: Int64(staleIfErrorSeconds))
  }
}

extension CacheMeta {
  /// A stored response header: status, reason phrase and fields in their original order.
  ///
  /// Kept free of any HTTP library's types so the store does not depend on one;
  /// the proxy converts at its edge.
  public struct ResponseHeader: Hashable, Sendable {
    public var status: UInt16
    public var reason: String
    public var fields: [Field]

    public init(status: UInt16, reason: String = "", fields: [Field] = []) {
      self.status = status
      self.reason = reason
      self.fields = fields
    }

    /// The first value of a field, matched case-insensitively as HTTP field names are.
    public subscript(name: String) -> String? {
      fields.first { $0.name.utf8.elementsEqual(name.utf8, by: Self.asciiCaseInsensitiveEqual) }?.value
    }

    static func asciiCaseInsensitiveEqual(_ a: UInt8, _ b: UInt8) -> Bool {
      a == b || (a ^ 0x20 == b && (a | 0x20) >= 0x61 && (a | 0x20) <= 0x7a)
    }
  }

  public struct Field: Hashable, Sendable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
      self.name = name
      self.value = value
    }
  }
}
