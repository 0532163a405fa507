import EdgeCDNStore
import Logging
import NIOCore
import NIOHTTP1

/// The proxy's event-loop fast path: a fresh RAM hit for a plain GET or HEAD, answered
/// as `CachingProxy` would answer it (same Age, Cache-Status, Connection handling,
/// counters and access log), without a task.
///
/// Only requests whose answer cannot depend on anything but the stored entry qualify:
/// no Range, no conditional, no request Cache-Control or Pragma, no Authorization.
/// Everything else, and every entry that is stale, a Vary index, still being written,
/// not in RAM or larger than `maxBodyBytes`, goes to `CachingProxy.handle`.
///
/// Not generic: the store is reached through `any ImmediateLookup`, one witness call,
/// so the hot path does not run as unspecialised generic code from another module.
final class FreshHitResponder: ImmediateResponder {
  private let store: any ImmediateLookup
  private let counters: ProxyCounters
  private let maxBodyBytes: Int
  /// `CacheStatus(cacheName:, hit: true, ttl:)`'s text up to the ttl value.
  private let cacheStatusPrefix: String
  private let logger: Logger
  private let accessLogLevel: Logger.Level

  init(
    store: any ImmediateLookup, counters: ProxyCounters, maxBodyBytes: Int, cacheName: String, logger: Logger,
    accessLogAtInfo: Bool
  ) {
    self.store = store
    self.counters = counters
    self.maxBodyBytes = maxBodyBytes
    var prefix = CacheStatus(cacheName: cacheName, hit: true, ttl: 0).description
    prefix.removeLast()
    self.cacheStatusPrefix = prefix
    self.logger = logger
    self.accessLogLevel = accessLogAtInfo ? .info : .debug
  }

  func immediateResponse(to head: HTTPRequestHead, keepAlive: Bool) -> ImmediateResponse? {
    guard head.method == .GET || head.method == .HEAD else { return nil }
    var host: String?
    for (name, value) in head.headers {
      switch RequestField.classify(name) {
      case .host: if host == nil { host = value }
      case .needsFullPath: return nil
      case .other: break
      }
    }
    let key = RequestKey.of(host: host, uri: head.uri)
    let now = CacheTime.now()
    var facts = EntryExtensions.HitFacts()
    let found = store.immediateLookup(key, maxBodyBytes: maxBodyBytes, readsBody: head.method != .HEAD) { meta in
      guard meta.isFresh(at: now) else { return false }
      facts = EntryExtensions.hitFacts(of: meta.extensions)
      return !facts.isVaryIndex
    }
    guard let hit = found else { return nil }
    counters.count(.hits)
    let meta = hit.meta
    let ttl = (meta.freshUntil.millisecondsSinceEpoch - now.millisecondsSinceEpoch) / 1000
    let age = Freshness.currentAge(
      initialAge: facts.initialAge, responseTime: meta.updated.secondsSinceEpoch, now: now.secondsSinceEpoch)
    var keepAlive = keepAlive
    let headers = responseHeaders(
      meta.response.fields, age: max(0, age), ttl: ttl, keepAlive: &keepAlive, requestVersion: head.version)
    let status = HTTPResponseStatus(statusCode: Int(meta.response.status))
    let body = head.method == .HEAD ? [] : hit.body
    if logger.logLevel <= accessLogLevel {
      logAccess(head, status: status, bytes: head.method == .HEAD ? 0 : hit.bodySize, ttl: ttl)
    }
    return ImmediateResponse(
      head: HTTPResponseHead(version: .http1_1, status: status, headers: headers), body: body, keepAlive: keepAlive)
  }

  /// The stored fields with Age and Cache-Status, and Connection as `ResponseWriter`
  /// sets it, in one pass over the fields.
  private func responseHeaders(
    _ fields: [CacheMeta.Field], age: Int64, ttl: Int64, keepAlive: inout Bool, requestVersion: HTTPVersion
  ) -> HTTPHeaders {
    var headers = HTTPHeaders()
    headers.reserveCapacity(fields.count + 3)
    var hasConnection = false
    var hasContentLength = false
    for field in fields {
      switch ResponseField.classify(field.name) {
      case .age: continue  // replaced below, as replaceOrAdd does
      case .connection: hasConnection = true
      case .contentLength: hasContentLength = true
      case .other: break
      }
      headers.add(name: field.name, value: field.value)
    }
    headers.add(name: "Age", value: String(age))
    headers.add(name: "Cache-Status", value: cacheStatusPrefix + String(ttl))
    if hasConnection {
      // Not stored by this proxy (hop-by-hop); an entry written by another layer may have it.
      ResponseWriter.setConnection(&headers, keepAlive: &keepAlive, requestVersion: requestVersion)
      return headers
    }
    if requestVersion.minor == 0, !hasContentLength { keepAlive = false }
    if !keepAlive {
      headers.add(name: "Connection", value: "close")
    } else if requestVersion.minor == 0 {
      headers.add(name: "Connection", value: "keep-alive")
    }
    return headers
  }

  private func logAccess(_ head: HTTPRequestHead, status: HTTPResponseStatus, bytes: Int, ttl: Int64) {
    logger.log(
      level: accessLogLevel, "access",
      metadata: [
        "method": "\(head.method.rawValue)", "uri": "\(head.uri)", "status": "\(status.code)", "bytes": "\(bytes)",
        "cache": "\(cacheStatusPrefix)\(ttl)", "duration_ms": "0", "path": "immediate",
      ])
  }
}

/// Request fields the fast path looks at, matched case-insensitively without allocating.
enum RequestField {
  case host, needsFullPath, other

  static func classify(_ name: String) -> RequestField {
    let utf8 = name.utf8
    guard let first = utf8.first else { return .other }
    switch first | 0x20 {
    case UInt8(ascii: "h"): return ASCII.equals(utf8, "host") ? .host : .other
    case UInt8(ascii: "i"): return ASCII.hasPrefix(utf8, "if-") ? .needsFullPath : .other
    case UInt8(ascii: "r"): return ASCII.equals(utf8, "range") ? .needsFullPath : .other
    case UInt8(ascii: "c"): return ASCII.equals(utf8, "cache-control") ? .needsFullPath : .other
    case UInt8(ascii: "p"): return ASCII.equals(utf8, "pragma") ? .needsFullPath : .other
    case UInt8(ascii: "a"): return ASCII.equals(utf8, "authorization") ? .needsFullPath : .other
    default: return .other
    }
  }
}

/// Stored response fields the fast path treats specially.
enum ResponseField {
  case age, connection, contentLength, other

  static func classify(_ name: String) -> ResponseField {
    let utf8 = name.utf8
    switch utf8.count {
    case 3: return ASCII.equals(utf8, "age") ? .age : .other
    case 10: return ASCII.equals(utf8, "connection") ? .connection : .other
    case 14: return ASCII.equals(utf8, "content-length") ? .contentLength : .other
    default: return .other
    }
  }
}

enum ASCII {
  /// `text` equals the lowercase `lower`, ignoring ASCII case.
  static func equals(_ text: String.UTF8View, _ lower: StaticString) -> Bool {
    guard text.count == lower.utf8CodeUnitCount else { return false }
    return hasPrefix(text, lower)
  }

  static func hasPrefix(_ text: String.UTF8View, _ lower: StaticString) -> Bool {
    guard text.count >= lower.utf8CodeUnitCount else { return false }
    return lower.withUTF8Buffer { expected in
      zip(text, expected).allSatisfy { a, b in a == b || (a >= 0x41 && a <= 0x5a && a | 0x20 == b) }
    }
  }
}
