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
final class FreshHitResponder: ImmediateResponder, @unchecked Sendable {
  // @unchecked: every stored property is a constant; `cacheStatusBytes` is written in
  // init, only read afterwards and freed in deinit.

  private let store: any ImmediateLookup
  private let counters: ProxyCounters
  private let maxBodyBytes: Int
  /// `CacheStatus(cacheName:, hit: true, ttl:)`'s text up to the ttl value.
  private let cacheStatusPrefix: String
  /// The same bytes, raw, for the serialised path: as a String, each hit retained its
  /// storage, shared by every event loop (see `EncodedResponseHead`).
  private let cacheStatusBytes: UnsafeRawBufferPointer
  private let logger: Logger
  private let accessLogLevel: Logger.Level
  /// Decided once: reading `logger.logLevel` copies the log handler's existential (and
  /// retains it) on every hit, and this responder's logger never changes.
  private let logsAccess: Bool
  private let allocator = ByteBufferAllocator()
  /// Whether hits send the entry's serialised head (`EncodedResponseHead`); off when the
  /// cache name is not valid in a field value (NIOHTTP1's validator then has the say).
  private let encodesHeads: Bool
  /// Bodies up to this size are copied after the head (one buffer, one write); larger
  /// ones are sent as the store holds them, never copied.
  static let copiedBodyBytes = 8 << 10

  init(
    store: any ImmediateLookup, counters: ProxyCounters, maxBodyBytes: Int, cacheName: String, logger: Logger,
    accessLogAtInfo: Bool, encodesHeads: Bool = true
  ) {
    self.store = store
    self.counters = counters
    self.maxBodyBytes = maxBodyBytes
    var prefix = CacheStatus(cacheName: cacheName, hit: true, ttl: 0).description
    prefix.removeLast()
    self.cacheStatusPrefix = prefix
    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: prefix.utf8.count, alignment: 1)
    _ = bytes.initializeMemory(as: UInt8.self, from: prefix.utf8)
    self.cacheStatusBytes = UnsafeRawBufferPointer(bytes)
    self.encodesHeads = encodesHeads && EncodedResponseHead.isValidValue(prefix)
    self.logger = logger
    self.accessLogLevel = accessLogAtInfo ? .info : .debug
    self.logsAccess = logger.logLevel <= accessLogLevel
  }

  deinit {
    cacheStatusBytes.deallocate()
  }

  func immediateResponse(
    to head: HTTPRequestHead, keepAlive: Bool, connection: inout ImmediateConnectionMemo
  ) -> ImmediateResponse? {
    guard head.method == .GET || head.method == .HEAD else { return nil }
    var host: String?
    for (name, value) in head.headers {
      switch RequestField.classify(name) {
      case .host: if host == nil { host = RequestKey.host(value) }
      case .needsFullPath: return nil
      case .other: break
      }
    }
    let key = LastKey.key(host: host, uri: head.uri, memo: &connection)
    return response(
      key: key, isHEAD: head.method == .HEAD, version: head.version, keepAlive: keepAlive, encodedOnly: false,
      connection: &connection
    ) { head.uri }
  }

  /// The scanner has vouched that the request is a plain GET or HEAD (`WireRequestScan`).
  func wireResponse(
    to request: WireRequest, keepAlive: Bool, connection: inout ImmediateConnectionMemo
  ) -> ImmediateResponse? {
    guard encodesHeads else {
      connection.answerableBehind = true
      return nil
    }
    let key = LastKey.key(of: request, memo: &connection)
    return response(
      key: key, isHEAD: request.isHEAD, version: request.version, keepAlive: keepAlive, encodedOnly: true,
      connection: &connection
    ) { request.uri }
  }

  /// `encodedOnly`: nil, before the store counts anything, when the hit's head is not
  /// serialised (then `connection.answerableBehind` is set). `uri` is read only for the
  /// access log.
  ///
  /// The response is rendered inside the store's call (`immediateServe`), from what the
  /// entry holds, lent: a hot entry is read by every event loop at once, and each
  /// reference copied out of it would be a retain and a release on a line their cores
  /// share.
  private func response(
    key: CacheKey, isHEAD: Bool, version: HTTPVersion, keepAlive: Bool, encodedOnly: Bool,
    connection: inout ImmediateConnectionMemo, uri: () -> String
  ) -> ImmediateResponse? {
    let now = CacheTime.now()
    var hit = Rendered(keepAlive: keepAlive, version: version)
    let served = store.immediateServe(
      key, maxBodyBytes: maxBodyBytes, readsBody: !isHEAD,
      accept: { meta, bodySize, memo, lent in
        guard meta.isFresh(at: now) else { return false }
        // The usual hit: the head serialised by an earlier one, lent by the store.
        if encodesHeads, let lent, let kept = EncodedResponseHead.parts(ofLent: lent) {
          return accept(
            meta, bodySize: bodySize, facts: kept.facts, stored: kept.head, isHEAD: isHEAD, now: now, into: &hit)
        }
        return acceptWithoutKeptHead(
          meta, bodySize: bodySize, memo: memo, isHEAD: isHEAD, version: version, encodedOnly: encodedOnly, now: now,
          connection: &connection, into: &hit)
      },
      serve: { body, file in
        guard !isHEAD else { return }
        if let file {
          // Sent with sendfile after the head, whatever its size.
          hit.fileBody = file
        } else if hit.copiesBody {
          for index in body.indices { hit.encoded?.writeImmutableBuffer(body[index]) }
        } else {
          hit.body = body
        }
      })
    guard served else { return nil }
    counters.count(.hits)
    let status = HTTPResponseStatus(statusCode: Int(hit.status))
    if logsAccess {
      logAccess(
        method: isHEAD ? "HEAD" : "GET", uri: uri(), status: status, bytes: isHEAD ? 0 : hit.bodySize, ttl: hit.ttl)
    }
    if let encoded = hit.encoded {
      return ImmediateResponse(encoded: encoded, body: hit.body, keepAlive: hit.keepAlive, fileBody: hit.fileBody)
    }
    return ImmediateResponse(
      head: HTTPResponseHead(version: .http1_1, status: status, headers: hit.headers ?? HTTPHeaders()),
      body: hit.body, keepAlive: hit.keepAlive, fileBody: hit.fileBody)
  }

  /// What a served hit is made of, filled in during the store's call.
  private struct Rendered {
    var keepAlive: Bool
    let version: HTTPVersion
    var status: UInt16 = 0
    var bodySize = 0
    var ttl: Int64 = 0
    var age: Int64 = 0
    /// The serialised head and what is per request, then the body when `copiesBody`.
    var encoded: ByteBuffer?
    var copiesBody = false
    /// The head's fields, when it is not serialised.
    var headers: HTTPHeaders?
    /// The body as the store holds it, when not copied (none for HEAD).
    var body: [ByteBuffer] = []
    /// The body when the store keeps it in a file: sent with sendfile (none for HEAD).
    var fileBody: FileBody?

    init(keepAlive: Bool, version: HTTPVersion) {
      self.keepAlive = keepAlive
      self.version = version
    }

    mutating func facts(of meta: CacheMeta, bodySize: Int, initialAge: Int64, now: CacheTime) {
      status = meta.response.status
      self.bodySize = bodySize
      ttl = (meta.freshUntil.millisecondsSinceEpoch - now.millisecondsSinceEpoch) / 1000
      age = max(
        0,
        Freshness.currentAge(
          initialAge: initialAge, responseTime: meta.updated.secondsSinceEpoch, now: now.secondsSinceEpoch))
    }
  }

  /// A hit without a serialised head in hand: the first on this stored version (the head
  /// is serialised and kept now), or one whose head cannot be serialised.
  ///
  /// Not inlined into the store's call. Why: merged with the usual path, the head built
  /// here, which must outlive its use, made the compiler retain the lent head on every
  /// hit too, on a reference count every event loop shares when the entry is hot.
  @inline(never)
  private func acceptWithoutKeptHead(
    _ meta: CacheMeta, bodySize: Int, memo: (any EntryMemo)?, isHEAD: Bool, version: HTTPVersion, encodedOnly: Bool,
    now: CacheTime, connection: inout ImmediateConnectionMemo, into hit: inout Rendered
  ) -> Bool {
    let kept = encodesHeads ? memo?.memo(as: EncodedResponseHead.self) : nil
    let facts = kept?.facts ?? EntryExtensions.hitFacts(of: meta.extensions)
    // A Vary index routes lookups: never answered here, nothing kept for it.
    guard !facts.isVaryIndex else { return false }
    let head =
      kept ?? (encodesHeads ? encodedHead(of: meta.response, bodySize: bodySize, facts: facts, memo: memo) : nil)
    if let head, let stored = head.head {
      return withExtendedLifetime(head) {
        accept(meta, bodySize: bodySize, facts: facts, stored: stored, isHEAD: isHEAD, now: now, into: &hit)
      }
    }
    if encodedOnly {
      connection.answerableBehind = true
      return false
    }
    hit.facts(of: meta, bodySize: bodySize, initialAge: facts.initialAge, now: now)
    hit.headers = responseHeaders(
      meta.response.fields, age: hit.age, ttl: hit.ttl, keepAlive: &hit.keepAlive, requestVersion: version)
    return true
  }

  /// Accepts a hit whose head is serialised (`stored`), unless it is a Vary index, and
  /// starts its response; the body follows when the store serves it.
  private func accept(
    _ meta: CacheMeta, bodySize: Int, facts: EntryExtensions.HitFacts, stored: UnsafeRawBufferPointer, isHEAD: Bool,
    now: CacheTime, into hit: inout Rendered
  ) -> Bool {
    // A Vary index routes lookups: never answered here.
    guard !facts.isVaryIndex else { return false }
    hit.facts(of: meta, bodySize: bodySize, initialAge: facts.initialAge, now: now)
    hit.copiesBody = !isHEAD && bodySize <= Self.copiedBodyBytes
    hit.encoded = encodedResponse(stored, copiedBodyBytes: hit.copiesBody ? bodySize : 0, hit: hit)
    return true
  }

  /// The entry's serialised head, built by the first hit on this stored version and kept
  /// in the entry's memo (see `EncodedResponseHead`).
  private func encodedHead(
    of response: CacheMeta.ResponseHeader, bodySize: Int, facts: EntryExtensions.HitFacts, memo: (any EntryMemo)?
  ) -> EncodedResponseHead {
    let built = EncodedResponseHead(response, bodySize: bodySize, facts: facts)
    return memo?.keepMemo(built) ?? built
  }

  /// The stored head, then what is per request (Age, Cache-Status, Connection), in one
  /// buffer with room for a small body after it: one write, one iovec. The stored head
  /// has a Content-Length, so HTTP/1.0 keep-alive holds.
  @inline(__always)
  private func encodedResponse(_ stored: UnsafeRawBufferPointer, copiedBodyBytes: Int, hit: Rendered) -> ByteBuffer {
    let prefix = cacheStatusBytes
    var buffer = allocator.buffer(capacity: stored.count + prefix.count + 80 + copiedBodyBytes)
    buffer.writeBytes(stored)
    buffer.writeStaticString("Age: ")
    buffer.writeString(String(hit.age))
    buffer.writeStaticString("\r\nCache-Status: ")
    buffer.writeBytes(prefix)
    buffer.writeString(String(hit.ttl))
    if !hit.keepAlive {
      buffer.writeStaticString("\r\nConnection: close")
    } else if hit.version.minor == 0 {
      buffer.writeStaticString("\r\nConnection: keep-alive")
    }
    buffer.writeStaticString("\r\n\r\n")
    return buffer
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
      case .transferEncoding, .other: break
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

  private func logAccess(method: String, uri: String, status: HTTPResponseStatus, bytes: Int, ttl: Int64) {
    logger.log(
      level: accessLogLevel, "access",
      metadata: [
        "method": "\(method)", "uri": "\(uri)", "status": "\(status.code)", "bytes": "\(bytes)",
        "cache": "\(cacheStatusPrefix)\(ttl)", "duration_ms": "0", "path": "immediate",
      ])
  }
}

/// The key of a connection's last fast-path request. Why: the key's BLAKE2b was about 8%
/// of a hit's CPU, and a connection often asks for the same URL again (a poller, a
/// player's manifest, a benchmark); comparing the request's bytes with the key's costs
/// far less.
final class LastKey {
  var key: CacheKey

  init(key: CacheKey) {
    self.key = key
  }

  static func key(host: String?, uri: String, memo: inout ImmediateConnectionMemo) -> CacheKey {
    if let last = memo.value as? LastKey, last.names(host: host?.utf8, target: uri.utf8) { return last.key }
    return remember(RequestKey.of(host: host, uri: uri), in: &memo)
  }

  static func key(of request: WireRequest, memo: inout ImmediateConnectionMemo) -> CacheKey {
    request.withTargetAndHost { target, host in
      if let last = memo.value as? LastKey, last.names(host: host, target: target) { return last.key }
      return remember(RequestKey.of(host: host, target: target), in: &memo)
    }
  }

  /// Kept in place, so a connection whose URLs all differ allocates one `LastKey`.
  private static func remember(_ key: CacheKey, in memo: inout ImmediateConnectionMemo) -> CacheKey {
    if let last = memo.value as? LastKey {
      last.key = key
    } else {
      memo.value = LastKey(key: key)
    }
    return key
  }

  /// Whether the key's primary is `host` lowercased then `target`, as `RequestKey` builds
  /// it; false for a non-ASCII host (its lowercasing is Unicode's: built again).
  private func names<Host: Collection<UInt8>, Target: Collection<UInt8>>(host: Host?, target: Target) -> Bool {
    let hostCount = host?.count ?? 0
    guard key.variance == nil, key.namespace.isEmpty, key.primary.count == hostCount + target.count else {
      return false
    }
    return key.primary.withUnsafeBufferPointer { primary in
      var index = 0
      if let host {
        for byte in host {
          guard byte < 0x80, primary[index] == (byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte) else {
            return false
          }
          index += 1
        }
      }
      for byte in target {
        guard primary[index] == byte else { return false }
        index += 1
      }
      return true
    }
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
  case age, connection, contentLength, transferEncoding, other

  static func classify(_ name: String) -> ResponseField {
    let utf8 = name.utf8
    switch utf8.count {
    case 3: return ASCII.equals(utf8, "age") ? .age : .other
    case 10: return ASCII.equals(utf8, "connection") ? .connection : .other
    case 14: return ASCII.equals(utf8, "content-length") ? .contentLength : .other
    case 17: return ASCII.equals(utf8, "transfer-encoding") ? .transferEncoding : .other
    default: return .other
    }
  }
}
