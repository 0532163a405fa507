public import EdgeCDNStore
import NIOCore
import NIOHTTP1
import Synchronization

/// Renders Prometheus text for GET /metrics. The observability work provides one; until
/// then /metrics answers 404 saying so rather than serving made-up numbers.
public protocol MetricsExposition: Sendable {
  func render() async -> String
}

/// Readiness for /readyz: set once listeners are bound, cleared when shutdown begins, and
/// failed by any check (the store's health, when the tiers expose one).
public final class Readiness: Sendable {
  private let ready = Atomic<Bool>(false)
  private let check: (@Sendable () async -> String?)?

  /// `check` returns nil when healthy, else why not.
  public init(check: (@Sendable () async -> String?)? = nil) {
    self.check = check
  }

  public func set(_ value: Bool) { ready.store(value, ordering: .relaxed) }

  /// Nil when ready, else the reason.
  public func notReadyReason() async -> String? {
    guard ready.load(ordering: .relaxed) else { return "starting or shutting down" }
    return await check?()
  }
}

/// The admin listener: /healthz (the process answers), /readyz, /metrics (seam), and the
/// purge API: `POST /purge?url=http://host/path` with `Authorization: Bearer <token>`.
public struct AdminHandler<Store: Storage>: HTTPRequestHandler {
  let proxy: CachingProxy<Store>
  let readiness: Readiness
  let metrics: (any MetricsExposition)?

  public init(proxy: CachingProxy<Store>, readiness: Readiness, metrics: (any MetricsExposition)? = nil) {
    self.proxy = proxy
    self.readiness = readiness
    self.metrics = metrics
  }

  public func handle(_ request: ServerRequest, writer: inout ResponseWriter) async throws {
    let (path, query) = Self.split(request.head.uri)
    switch (request.head.method, path) {
    case (.GET, "/healthz"), (.HEAD, "/healthz"):
      try await writer.respond(status: .ok, text: "ok\n")
    case (.GET, "/readyz"), (.HEAD, "/readyz"):
      if let reason = await readiness.notReadyReason() {
        try await writer.respond(status: .serviceUnavailable, text: "not ready: \(reason)\n")
      } else {
        try await writer.respond(status: .ok, text: "ready\n")
      }
    case (.GET, "/metrics"):
      guard let metrics else {
        try await writer.respond(status: .notFound, text: "metrics are not wired into this build yet\n")
        return
      }
      try await writer.respond(
        status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4"], text: await metrics.render())
    case (.POST, "/purge"), (.DELETE, "/purge"):
      guard PurgeAuthorization.isAuthorized(request.head.headers, token: proxy.configuration.purgeToken) else {
        try await writer.respond(status: .unauthorized, text: "purge needs a valid bearer token\n")
        return
      }
      guard let url = query["url"], let key = CachingProxy<Store>.cacheKey(url: url, host: nil) else {
        try await writer.respond(status: .badRequest, text: "purge needs ?url=http://host/path\n")
        return
      }
      let removed = try await proxy.purge(primaryKey: key)
      try await writer.respond(status: removed ? .ok : .notFound, text: removed ? "purged\n" : "not cached\n")
    default:
      try await writer.respond(status: .notFound, text: "not found\n")
    }
  }

  /// Path and percent-decoded query parameters.
  static func split(_ uri: String) -> (String, [String: String]) {
    guard let q = uri.firstIndex(of: "?") else { return (uri, [:]) }
    var query: [String: String] = [:]
    for pair in uri[uri.index(after: q)...].split(separator: "&") {
      let parts = pair.split(separator: "=", maxSplits: 1)
      guard let name = parts.first else { continue }
      query[String(name)] = parts.count > 1 ? percentDecoded(parts[1]) : ""
    }
    return (String(uri[..<q]), query)
  }

  static func percentDecoded(_ s: Substring) -> String {
    var bytes: [UInt8] = []
    var iterator = s.utf8.makeIterator()
    while let byte = iterator.next() {
      if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
        let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
      {
        bytes.append(value)
      } else if byte == UInt8(ascii: "+") {
        bytes.append(UInt8(ascii: " "))
      } else {
        bytes.append(byte)
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}
