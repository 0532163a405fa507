public import EdgeCDNStore
public import Logging
import NIOCore
public import NIOHTTP1
import Synchronization

/// The caching reverse proxy: pingora_cache's HttpCache on top of any `Storage`.
///
/// Generic over the store so the RAM tier today and the disk or tiered store later plug
/// in without an existential on the hot path; `edge-cdn` picks the store in one place.
///
/// Flow of a GET: look up (two steps when the URL has a Vary index); a fresh hit is
/// served (304 to a matching conditional, 206/416 for ranges); a stale one is served
/// under stale-while-revalidate with a background refresh, or revalidated with the
/// stored validators (304 → `updateMeta`), or served under stale-if-error when the
/// origin fails. A miss takes the cache lock: the leader fetches, stores and streams,
/// waiters read the write in progress.
public final class CachingProxy<Store: Storage>: HTTPRequestHandler {
  public let store: Store
  public let origin: OriginClient
  public let configuration: ProxyConfiguration
  public let lock = CacheLock()
  let logger: Logger
  private let refreshing = Mutex<Set<CacheHash>>([])
  private let counters = ProxyCounters()
  let metrics: ProxyMetrics
  /// Fresh RAM hits answered on the event loop; nil when the store cannot answer
  /// synchronously or the setting turns it off.
  public let immediateResponder: (any ImmediateResponder)?

  public init(
    store: Store, origin: OriginClient, configuration: ProxyConfiguration, logger: Logger,
    metrics: ProxyMetrics = ProxyMetrics()
  ) {
    self.store = store
    self.origin = origin
    self.configuration = configuration
    self.logger = logger
    self.metrics = metrics
    if configuration.immediateHitMaxBodyBytes > 0, let immediate = store as? any ImmediateLookup {
      let responder = FreshHitResponder(
        store: immediate, counters: counters, maxBodyBytes: configuration.immediateHitMaxBodyBytes,
        cacheName: configuration.cacheName, logger: logger, accessLogAtInfo: configuration.accessLogAtInfo)
      self.immediateResponder = TimedImmediateResponder(inner: responder, metrics: metrics)
    } else {
      self.immediateResponder = nil
    }
  }

  /// Requests served, by outcome; read by tests and the admin listener's future metrics.
  public var stats: ProxyCounters.Snapshot { counters.snapshot() }

  // MARK: Entry

  public func handle(_ request: ServerRequest, writer: inout ResponseWriter) async throws {
    let started = ContinuousClock.now
    var status = CacheStatus(cacheName: configuration.cacheName)
    defer {
      let now = ContinuousClock.now
      let elapsed = now - started
      if let outcome = status.outcome {
        metrics.record(
          outcome, received: started, headSent: writer.headSentAt, completed: writer.completed ? now : nil)
      }
      let level: Logger.Level = configuration.accessLogAtInfo ? .info : .debug
      if logger.logLevel <= level {
        logger.log(
          level: level, "access",
          metadata: [
            "method": "\(request.head.method.rawValue)", "uri": "\(request.head.uri)", "status": "\(writer.status)",
            "bytes": "\(writer.bodyBytes)", "cache": "\(status)", "duration_ms": "\(elapsed.milliseconds)",
          ])
      }
    }
    let head = request.head
    if head.method.rawValue == "PURGE" {
      status.outcome = .purges
      try await purge(request, writer: &writer)
      return
    }
    guard Cacheability.isCacheableMethod(head.method) else {
      status.forward = .method
      try await passThrough(request, status: &status, writer: &writer, invalidate: true)
      return
    }
    try await cached(request, status: &status, writer: &writer)
  }

  // MARK: Cache flow

  private func cached(_ request: ServerRequest, status: inout CacheStatus, writer: inout ResponseWriter) async throws {
    let head = request.head
    let key = Self.cacheKey(for: head)
    let requestCC = Self.requestCacheControl(head.headers)
    let found: Lookup
    do {
      found = try await lookup(key, request: head.headers)
    } catch {
      // A broken store must not take the site down: count it and go to the origin.
      logger.warning("cache lookup failed", metadata: ["key": "\(key)", "error": "\(error)"])
      found = .miss(index: nil)
    }
    switch found {
    case .hit(var hit, let variantKey, let ext):
      try await serveLookupHit(
        &hit, key: variantKey, primaryKey: key, ext: ext, request: request, requestCC: requestCC, status: &status,
        writer: &writer)
    case .miss(let index):
      status.forward = index == nil ? .uriMiss : .varyMiss
      if requestCC.onlyIfCached {
        try await writer.respond(status: .gatewayTimeout, headers: status.headers, text: "not in cache\n")
        return
      }
      if head.method == .HEAD {
        // A HEAD miss is forwarded as is; filling the cache needs the body of a GET.
        try await passThrough(request, status: &status, writer: &writer, invalidate: false)
        return
      }
      try await miss(request, primaryKey: key, index: index, status: &status, writer: &writer)
    }
  }

  private func serveLookupHit(
    _ hit: inout CacheHit<Store.Hit>, key: CacheKey, primaryKey: CacheKey, ext: EntryExtensions,
    request: ServerRequest, requestCC: CacheControl, status: inout CacheStatus, writer: inout ResponseWriter
  ) async throws {
    let now = CacheTime.now()
    let meta = hit.meta
    let ttl = (meta.freshUntil.millisecondsSinceEpoch - now.millisecondsSinceEpoch) / 1000
    let age = Freshness.currentAge(
      initialAge: ext.initialAge, responseTime: meta.updated.secondsSinceEpoch, now: now.secondsSinceEpoch)
    let requestNoCache = requestCC.noCache
    var fresh = meta.isFresh(at: now) && !requestNoCache
    if let maxAge = requestCC.maxAge, age > Int64(maxAge) { fresh = false }
    if let minFresh = requestCC.minFresh, ttl < Int64(minFresh) { fresh = false }
    status.hit = true
    status.ttl = ttl
    if fresh {
      count(.hits, &status)
      try await serveHit(&hit, ext: ext, age: age, request: request, status: status, writer: &writer)
      return
    }
    let mayServeStale = !ext.mustRevalidate && !requestNoCache
    let staleness = max(0, -ttl)
    if mayServeStale, !meta.isFresh(at: now), requestCC.maxStale.map({ staleness <= Int64($0) }) == true {
      count(.hits, &status)
      try await serveHit(&hit, ext: ext, age: age, request: request, status: status, writer: &writer)
      return
    }
    if mayServeStale, !meta.isFresh(at: now), meta.isWithinStaleWhileRevalidate(at: now) {
      count(.staleWhileRevalidate, &status)
      refreshInBackground(key: key, primaryKey: primaryKey, meta: meta, request: request.head)
      status.detail = "stale-while-revalidate"
      try await serveHit(&hit, ext: ext, age: age, request: request, status: status, writer: &writer)
      return
    }
    if requestCC.onlyIfCached {
      status.hit = false
      try await writer.respond(status: .gatewayTimeout, headers: status.headers, text: "cached response is stale\n")
      return
    }
    // One revalidation per entry at a time, as one fetch per missing key: the others wait
    // for it and serve what it left in the store.
    switch lock.acquire(key) {
    case .leader(let ticket):
      defer { lock.release(ticket, outcome: .notStored) }
      try await revalidate(
        &hit, key: key, primaryKey: primaryKey, ext: ext, request: request, requestCC: requestCC, status: &status,
        writer: &writer, ticket: ticket)
    case .waiter(let ticket):
      count(.coalesced, &status)
      let timeout = TimeAmount.milliseconds(configuration.cacheLockTimeoutMilliseconds)
      if await ticket.wait(timeout: timeout, on: request.eventLoop) != nil,
        case .hit(var refreshed, let refreshedKey, _)? = try? await lookup(
          primaryKey, request: request.head.headers),
        refreshedKey == key, refreshed.meta.isFresh(at: CacheTime.now())
      {
        try? await hit.handler.finish()
        status.hit = false
        status.collapsed = true
        status.forward = .stale
        try await serveFromStore(&refreshed, request: request, status: status, writer: &writer)
        return
      }
      // The leader failed, timed out or left something else: revalidate this entry itself
      // (which also serves it stale when the origin fails and stale-if-error allows).
      try await revalidate(
        &hit, key: key, primaryKey: primaryKey, ext: ext, request: request, requestCC: requestCC, status: &status,
        writer: &writer, ticket: nil)
    }
  }

  /// Revalidates a stale entry with its validators (RFC 9111 §4.3).
  private func revalidate(
    _ hit: inout CacheHit<Store.Hit>, key: CacheKey, primaryKey: CacheKey, ext: EntryExtensions,
    request: ServerRequest, requestCC: CacheControl, status: inout CacheStatus, writer: inout ResponseWriter,
    ticket: CacheLock.Ticket?
  ) async throws {
    let now = CacheTime.now()
    let meta = hit.meta
    let staleness = max(0, (now.millisecondsSinceEpoch - meta.freshUntil.millisecondsSinceEpoch) / 1000)
    let mayServeStaleOnError =
      !ext.mustRevalidate
      && (meta.isWithinStaleIfError(at: now) || requestCC.staleIfError.map { staleness <= Int64($0) } == true)
    status.hit = false
    status.forward = .stale
    var originHead = Self.originHead(for: request.head, fill: true)
    let stored = Self.headers(of: meta.response)
    for (name, value) in Conditional.validators(for: stored) {
      originHead.headers.replaceOrAdd(name: name, value: value)
    }
    let requestTime = CacheTime.now()
    let response: OriginResponse
    do {
      response = try await fetch(originHead)
    } catch {
      // Waiters revalidate for themselves (and serve stale under stale-if-error too).
      if let ticket { lock.release(ticket, outcome: .notStored) }
      if mayServeStaleOnError {
        try await serveStaleOnError(&hit, ext: ext, request: request, status: &status, writer: &writer, now: now)
        return
      }
      try await originFailure(error, status: &status, writer: &writer)
      return
    }
    status.forwardStatus = Int(response.head.status.code)
    if response.head.status == .notModified {
      count(.revalidated, &status)
      while try await response.body.read() != nil {}
      let refreshed = await refreshMeta(
        key: key, meta: meta, notModified: response.head.headers, request: request.head, requestTime: requestTime)
      hit.meta = refreshed ?? meta
      if let ticket { lock.release(ticket, outcome: refreshed == nil ? .notStored : .refreshed) }
      let refreshedExt = EntryExtensions(decoding: hit.meta.extensions)
      let after = CacheTime.now()
      status.ttl = (hit.meta.freshUntil.millisecondsSinceEpoch - after.millisecondsSinceEpoch) / 1000
      let age = Freshness.currentAge(
        initialAge: refreshedExt.initialAge, responseTime: hit.meta.updated.secondsSinceEpoch,
        now: after.secondsSinceEpoch)
      try await serveHit(&hit, ext: refreshedExt, age: age, request: request, status: status, writer: &writer)
      return
    }
    if response.head.status.code >= 500, mayServeStaleOnError {
      if let ticket { lock.release(ticket, outcome: .notStored) }
      try await serveStaleOnError(&hit, ext: ext, request: request, status: &status, writer: &writer, now: now)
      return
    }
    // A new response replaces the entry (under the same Vary index when it still applies).
    let served = try await storeAndServe(
      response, request: request, primaryKey: primaryKey, index: Self.index(of: key, ext), requestTime: requestTime,
      ticket: ticket, status: &status, writer: &writer, staleOnError: mayServeStaleOnError)
    if !served {
      // The origin failed after its head, before anything was sent: still an error.
      try await serveStaleOnError(&hit, ext: ext, request: request, status: &status, writer: &writer, now: now)
    }
    try? await hit.handler.finish()
  }

  private func serveStaleOnError(
    _ hit: inout CacheHit<Store.Hit>, ext: EntryExtensions, request: ServerRequest, status: inout CacheStatus,
    writer: inout ResponseWriter, now: CacheTime
  ) async throws {
    count(.staleIfError, &status)
    status.hit = true
    status.forward = nil
    status.forwardStatus = nil
    status.detail = "stale-if-error"
    let age = Freshness.currentAge(
      initialAge: ext.initialAge, responseTime: hit.meta.updated.secondsSinceEpoch, now: now.secondsSinceEpoch)
    try await serveHit(&hit, ext: ext, age: age, request: request, status: status, writer: &writer)
  }

  /// Applies a 304's fields and new freshness to the stored meta (RFC 9111 §4.3.4).
  private func refreshMeta(
    key: CacheKey, meta: CacheMeta, notModified: HTTPHeaders, request: HTTPRequestHead, requestTime: CacheTime
  ) async -> CacheMeta? {
    let merged = Conditional.merge(notModified: notModified, into: Self.headers(of: meta.response))
    let responseTime = CacheTime.now()
    guard
      case .store(let plan) = Cacheability.decide(
        status: UInt(meta.response.status), responseHeaders: merged, requestHeaders: request.headers,
        requestTime: requestTime.secondsSinceEpoch, responseTime: responseTime.secondsSinceEpoch,
        heuristicFraction: configuration.heuristicFraction, maxHeuristic: configuration.maxHeuristicSeconds)
    else { return nil }
    let old = EntryExtensions(decoding: meta.extensions)
    var refreshed = Self.meta(
      plan: plan, status: meta.response.status, reason: meta.response.reason, headers: merged,
      responseTime: responseTime, variance: meta.variance, generation: old.generation)
    refreshed.created = meta.created
    do {
      _ = try await store.updateMeta(key, meta: refreshed)
    } catch {
      logger.warning("updateMeta failed", metadata: ["key": "\(key)", "error": "\(error)"])
    }
    return refreshed
  }

  /// Serves a stale entry now and refreshes it once in the background (RFC 5861 §3).
  private func refreshInBackground(key: CacheKey, primaryKey: CacheKey, meta: CacheMeta, request: HTTPRequestHead) {
    let hash = key.combinedHash
    guard refreshing.withLock({ $0.insert(hash).inserted }) else { return }
    Task {
      defer { _ = refreshing.withLock { $0.remove(hash) } }
      var originHead = Self.originHead(for: request, fill: true)
      for (name, value) in Conditional.validators(for: Self.headers(of: meta.response)) {
        originHead.headers.replaceOrAdd(name: name, value: value)
      }
      let requestTime = CacheTime.now()
      guard let response = try? await fetch(originHead) else { return }
      if response.head.status == .notModified {
        while (try? await response.body.read()) != nil {}
        _ = await refreshMeta(
          key: key, meta: meta, notModified: response.head.headers, request: request, requestTime: requestTime)
        return
      }
      guard response.head.status.code < 500 else { return }
      let ext = EntryExtensions(decoding: meta.extensions)
      let prepared = await prepareStore(
        response, request: request, primaryKey: primaryKey, index: Self.index(of: key, ext), requestTime: requestTime)
      if case .stored(_, _, _, let copy) = prepared { await copy.value }
    }
  }

  // MARK: Miss

  private func miss(
    _ request: ServerRequest, primaryKey: CacheKey, index: VaryIndex?, status: inout CacheStatus,
    writer: inout ResponseWriter
  ) async throws {
    switch lock.acquire(primaryKey) {
    case .leader(let ticket):
      count(.misses, &status)
      let requestTime = CacheTime.now()
      let response: OriginResponse
      do {
        response = try await fetch(Self.originHead(for: request.head, fill: true))
      } catch {
        lock.release(ticket, outcome: .notStored)
        try await originFailure(error, status: &status, writer: &writer)
        return
      }
      status.forward = status.forward ?? .miss
      try await storeAndServe(
        response, request: request, primaryKey: primaryKey, index: index, requestTime: requestTime, ticket: ticket,
        status: &status, writer: &writer)
    case .waiter(let ticket):
      count(.coalesced, &status)
      let timeout = TimeAmount.milliseconds(configuration.cacheLockTimeoutMilliseconds)
      let outcome = await ticket.wait(timeout: timeout, on: request.eventLoop)
      status.collapsed = true
      if case .stored(let key, let tag, let meta) = outcome, matches(key, meta: meta, request: request.head, primaryKey)
      {
        if var hit = try await store.lookupStreamingWrite(key, tag: tag) {
          status.forward = .miss
          status.stored = true
          writer.sendsEachChunk = true
          try await serveFromStore(&hit, request: request, status: status, writer: &writer)
          return
        }
      }
      status.detail = outcome == nil ? "lock-timeout" : "not-stored"
      status.forward = .miss
      try await passThrough(request, status: &status, writer: &writer, invalidate: false)
    }
  }

  /// Whether a write the leader stored is the variant this request wants.
  private func matches(_ key: CacheKey, meta: CacheMeta, request: HTTPRequestHead, _ primaryKey: CacheKey) -> Bool {
    guard key.variance != nil else { return true }
    let ext = EntryExtensions(decoding: meta.extensions)
    let variance = Variance.hash(names: ext.varyNames, generation: ext.generation, request: request.headers)
    return primaryKey.withVariance(variance) == key
  }

  /// Stores a storable response and serves it; passes anything else through. Releases
  /// the lock ticket (if any) once waiters can read what was stored.
  ///
  /// A small body that came whole with the origin's first read (the usual miss: head and
  /// body in one segment) is written into the store and served from the bytes in hand
  /// (`storeWholeAndServe`). Anything else streams: a fill task copies it into the store
  /// while this request reads the write back, so a large or trickling body reaches the
  /// client, and waiters, as it arrives.
  ///
  /// `staleOnError`: when the origin fails before anything was sent, return false (the
  /// lock released) instead of answering 502, so the caller serves its stale copy.
  @discardableResult
  private func storeAndServe(
    _ response: OriginResponse, request: ServerRequest, primaryKey: CacheKey, index: VaryIndex?,
    requestTime: CacheTime, ticket: CacheLock.Ticket?, status: inout CacheStatus, writer: inout ResponseWriter,
    staleOnError: Bool = false
  ) async throws -> Bool {
    let planned = await plan(
      response, request: request.head, primaryKey: primaryKey, index: index, requestTime: requestTime)
    guard case .store(let key, let meta, let ext, let bodySize) = planned else {
      if let ticket { lock.release(ticket, outcome: .notStored) }
      if case .notStored(let reason) = planned { status.detail = reason }
      try await forward(response, request: request.head, status: status, writer: &writer)
      return true
    }
    var prefix: [ByteBuffer] = []
    if let bodySize, bodySize <= Self.wholeBodyMaxBytes {
      // Waits no longer than the streaming path would for its first chunk.
      var whole = false
      do throws(OriginError) {
        if let first = try await response.body.read() { prefix.append(first) }
        if (prefix.first?.readableBytes ?? 0) == bodySize {
          // The decoder ends a body at its Content-Length, with the same read: no wait.
          if let more = try await response.body.read() { prefix.append(more) } else { whole = true }
        }
      } catch {
        // Nothing sent yet: the client gets a clean 502 (or the stale copy), not a cut body.
        if let ticket { lock.release(ticket, outcome: .notStored) }
        if staleOnError { return false }
        try await originFailure(error, status: &status, writer: &writer)
        return true
      }
      if whole {
        try await storeWholeAndServe(
          prefix.first ?? ByteBuffer(), response: response, key: key, meta: meta, ext: ext, request: request,
          ticket: ticket, status: &status, writer: &writer)
        return true
      }
    }
    // Of unknown length, the body may outgrow what the store takes: the fill relays it to
    // this request as it stores it (RelayedHitHandler), so a store that gives up midway
    // does not cut the response. So does a body larger than the store lets a reader
    // follow as it is written, which this request would otherwise get only once committed.
    let followable = bodySize.map { $0 <= store.streamingPartialWriteLimit ?? .max } ?? false
    let relay = followable ? nil : BodyPipe()
    let prepared = await openFill(response, key: key, meta: meta, prefix: prefix, relay: relay)
    switch prepared {
    case .stored(let key, let tag, let meta, let copy):
      if let ticket { lock.release(ticket, outcome: .stored(key: key, tag: tag, meta: meta)) }
      status.stored = true
      writer.sendsEachChunk = true
      if let relay {
        var hit = CacheHit(meta: meta, handler: RelayedHitHandler(hash: key.combinedHash, pipe: relay))
        // At the end the leader has all it wants (all of it, a range, or none for a HEAD or a
        // 304): the relay is let go, so the fill stops waiting for it, and the end waits for
        // the commit, except a range's, which must not wait for the rest of a large fill.
        writer.endBarrier = { partial in
          relay.cancel()
          if !partial { await copy.value }
        }
        try await serveFromStore(&hit, request: request, status: status, writer: &writer)
        return true
      }
      var hit = try await store.lookupStreamingWrite(key, tag: tag)
      if hit == nil {
        // A store without partial-write reads: wait for the fill, then read it whole.
        await copy.value
        hit = try await store.lookup(key)
      }
      guard var hit else {
        try await writer.respond(status: .badGateway, headers: status.headers, text: "cache fill failed\n")
        return true
      }
      // A range of a large fill must not wait for the rest of it.
      writer.endBarrier = { partial in if !partial { await copy.value } }
      try await serveFromStore(&hit, request: request, status: status, writer: &writer)
    case .notStored(let response, let reason):
      if let ticket { lock.release(ticket, outcome: .notStored) }
      status.detail = reason
      try await forward(response, request: request.head, status: status, writer: &writer, prefix: prefix)
    }
    return true
  }

  /// The largest body taken whole from the origin's first read rather than streamed
  /// (`storeAndServe`): a socket read's worth, so holding it costs no more than the
  /// streaming path's read buffer does.
  static var wholeBodyMaxBytes: Int { 64 << 10 }

  /// A miss whose whole body is in hand: written into the store before the client sees a
  /// byte, so a client that goes away cannot cut the fill and one that asks again finds it
  /// committed; then served from `body` with the store's rules (`HitResponder`). No fill
  /// task, no read back through the store: the cheap path of a small miss.
  private func storeWholeAndServe(
    _ body: ByteBuffer, response: OriginResponse, key: CacheKey, meta: CacheMeta, ext: EntryExtensions,
    request: ServerRequest,
    ticket: CacheLock.Ticket?, status: inout CacheStatus, writer: inout ResponseWriter
  ) async throws {
    if let failure = await storeWhole(body, key: key, meta: meta, ticket: ticket) {
      if let ticket { lock.release(ticket, outcome: .notStored) }
      status.detail = failure
      // The origin's body is all read: `forward` sends the bytes in hand and finds its end.
      try await forward(response, request: request.head, status: status, writer: &writer, prefix: [body])
      return
    }
    status.stored = true
    var hit = CacheHit(meta: meta, handler: BufferedHitHandler(hash: key.combinedHash, body: body))
    let age = Freshness.currentAge(
      initialAge: ext.initialAge, responseTime: meta.updated.secondsSinceEpoch, now: CacheTime.now().secondsSinceEpoch)
    try await serveHit(&hit, ext: ext, age: age, request: request, status: status, writer: &writer)
  }

  /// Writes a whole body into the store; nil when stored, else why not. Waiters are told
  /// once they can read it: at once when they can read a write in progress by its tag,
  /// else once it is committed. On a failure the caller releases the ticket (a second
  /// release after the one here is ignored).
  private func storeWhole(
    _ body: ByteBuffer, key: CacheKey, meta: CacheMeta, ticket: CacheLock.Ticket?
  ) async -> String? {
    let miss: Store.Miss
    do {
      miss = try await store.missHandler(for: key, meta: meta)
    } catch {
      return "store-\(error.kind)"
    }
    do {
      try await miss.writeBody(body, eof: true)
    } catch {
      await miss.abort(reason: "\(error)")
      return "store-\(error.kind)"
    }
    let tag = miss.streamingWriteTag
    if let ticket, tag != nil { lock.release(ticket, outcome: .stored(key: key, tag: tag, meta: meta)) }
    do {
      _ = try await miss.finish()
    } catch {
      logger.debug("cache fill failed", metadata: ["key": "\(key)", "error": "\(error)"])
      // Waiters already told read the write they were told of; the others fetch.
      return "store-\(error.kind)"
    }
    if let ticket, tag == nil { lock.release(ticket, outcome: .stored(key: key, tag: nil, meta: meta)) }
    return nil
  }

  enum Prepared: Sendable {
    case stored(key: CacheKey, tag: StreamingWriteTag?, meta: CacheMeta, copy: Task<Void, Never>)
    case notStored(OriginResponse, reason: String)
  }

  /// What a response head decides: the key and meta to store it under (its Vary index
  /// written when needed), or why it is not stored.
  enum Planned: Sendable {
    case store(key: CacheKey, meta: CacheMeta, ext: EntryExtensions, bodySize: Int?)
    case notStored(reason: String)
  }

  /// Decides, writes the Vary index when needed, opens the miss handler and starts the
  /// body copy in its own task, so the fill completes even if every client goes away.
  private func prepareStore(
    _ response: OriginResponse, request: HTTPRequestHead, primaryKey: CacheKey, index: VaryIndex?,
    requestTime: CacheTime
  ) async -> Prepared {
    let planned = await plan(response, request: request, primaryKey: primaryKey, index: index, requestTime: requestTime)
    switch planned {
    case .store(let key, let meta, _, _): return await openFill(response, key: key, meta: meta, prefix: [])
    case .notStored(let reason): return .notStored(response, reason: reason)
    }
  }

  private func plan(
    _ response: OriginResponse, request: HTTPRequestHead, primaryKey: CacheKey, index: VaryIndex?,
    requestTime: CacheTime
  ) async -> Planned {
    let responseTime = CacheTime.now()
    let headers = response.head.headers
    let decision = Cacheability.decide(
      status: response.head.status.code, responseHeaders: headers, requestHeaders: request.headers,
      requestTime: requestTime.secondsSinceEpoch, responseTime: responseTime.secondsSinceEpoch,
      heuristicFraction: configuration.heuristicFraction, maxHeuristic: configuration.maxHeuristicSeconds)
    guard case .store(let plan) = decision else {
      if case .doNotStore(let reason) = decision { return .notStored(reason: reason) }
      return .notStored(reason: "uncacheable")
    }
    let length = headers.first(name: "content-length").flatMap(Int.init)
    if let length, length > configuration.maxCacheableObjectBytes {
      return .notStored(reason: "too-large")
    }
    var key = primaryKey
    var generation: UInt64 = 0
    if !plan.varyNames.isEmpty {
      if let index, index.names == plan.varyNames {
        generation = index.generation
      } else {
        generation = UInt64.random(in: 1...UInt64.max)
        let written = await writeVaryIndex(
          primaryKey, names: plan.varyNames, generation: generation, responseTime: responseTime, plan: plan)
        guard written else { return .notStored(reason: "store-error") }
      }
      key = primaryKey.withVariance(
        Variance.hash(names: plan.varyNames, generation: generation, request: request.headers))
    }
    let (meta, ext) = Self.entry(
      plan: plan, status: UInt16(response.head.status.code), reason: response.head.status.reasonPhrase,
      headers: Self.storableHeaders(headers), responseTime: responseTime, variance: key.variance,
      generation: generation)
    return .store(key: key, meta: meta, ext: ext, bodySize: length)
  }

  /// Opens the miss handler and starts the body copy (after `prefix`, chunks already read
  /// from the origin) in its own task, so the fill completes even if every client goes away.
  ///
  /// With a `relay`, each chunk is also handed to the leader (RelayedHitHandler): the copy
  /// goes on for the leader if the store's write fails, and for the store if the leader
  /// goes away; the origin is read until both are gone or the body ends.
  private func openFill(
    _ response: OriginResponse, key: CacheKey, meta: CacheMeta, prefix: [ByteBuffer], relay: BodyPipe? = nil
  ) async -> Prepared {
    let miss: Store.Miss
    do {
      miss = try await store.missHandler(for: key, meta: meta)
    } catch {
      return .notStored(response, reason: "store-\(error.kind)")
    }
    let body = response.body
    let logger = self.logger
    let maxBytes = configuration.maxCacheableObjectBytes
    let tag = miss.streamingWriteTag
    let copy = Task { [key] in
      await Self.copyFill(
        body, prefix: prefix, into: miss, relay: relay, maxBytes: maxBytes, key: key, logger: logger)
    }
    return .stored(key: key, tag: tag, meta: meta, copy: copy)
  }

  /// The fill's copy (see `openFill`): the origin's body into the store and, with a relay,
  /// to the leader, until the body ends or neither takes more. A store that fails is
  /// aborted and the relay goes on; a leader that goes away stops the relay and the store
  /// goes on; an origin that fails ends both.
  ///
  /// `maxBytes` (`proxy.cache.maxObjectSize`) stops the store's part of a body whose length
  /// was unknown once it grows past it, as a Content-Length past it is not stored at all.
  private static func copyFill(
    _ body: OriginBody, prefix: [ByteBuffer], into miss: Store.Miss, relay: BodyPipe?, maxBytes: Int,
    key: CacheKey, logger: Logger
  ) async {
    var storing = true
    var relaying = relay != nil
    var pending = prefix[...]
    var copied = 0
    func abandon(_ error: any Error, _ message: Logger.Message = "cache fill failed") async {
      logger.debug(message, metadata: ["key": "\(key)", "error": "\(error)"])
      await miss.abort(reason: "\(error)")
    }
    while storing || relaying {
      let next: ByteBuffer?
      if let first = pending.popFirst() {
        next = first
      } else {
        do throws(OriginError) {
          next = try await body.read()
        } catch {
          relay?.finish(error: error)
          if storing { await abandon(error) }
          return
        }
      }
      guard let chunk = next else {
        relay?.finish()
        guard storing else { return }
        do {
          try await miss.writeBody(ByteBuffer(), eof: true)
          _ = try await miss.finish()
        } catch {
          await abandon(error)
        }
        return
      }
      copied += chunk.readableBytes
      if storing, copied > maxBytes {
        storing = false
        logger.debug("cache fill stopped: larger than proxy.cache.maxObjectSize", metadata: ["key": "\(key)"])
        await miss.abort(reason: "the body outgrew proxy.cache.maxObjectSize (\(maxBytes) bytes)")
      }
      if storing {
        do {
          try await miss.writeBody(chunk, eof: false)
        } catch {
          storing = false
          await abandon(
            error, relaying ? "cache fill failed; the leader's response goes on from the origin" : "cache fill failed")
        }
      }
      if relaying, let relay { relaying = await relay.send(chunk) }
    }
    // Neither the store nor the leader takes more (the miss is aborted already): the
    // rest of the origin's body is left unread, as when a plain fill fails.
  }

  private func writeVaryIndex(
    _ primaryKey: CacheKey, names: [String], generation: UInt64, responseTime: CacheTime, plan: Cacheability.Plan
  ) async -> Bool {
    var ext = EntryExtensions()
    ext.isVaryIndex = true
    ext.varyNames = names
    ext.generation = generation
    // The index outlives any one variant's freshness: it only routes lookups.
    let keep = plan.lifetime + plan.staleIfError + plan.staleWhileRevalidate + 86_400
    let meta = CacheMeta(
      freshUntil: responseTime.adding(seconds: keep), created: responseTime,
      response: .init(status: 200, reason: "OK", fields: [.init("Vary", names.joined(separator: ", "))]),
      extensions: ext.encoded())
    do {
      let miss = try await store.missHandler(for: primaryKey, meta: meta)
      try await miss.writeBody(ByteBuffer(), eof: true)
      _ = try await miss.finish()
      return true
    } catch {
      logger.warning("writing the Vary index failed", metadata: ["key": "\(primaryKey)", "error": "\(error)"])
      return false
    }
  }

  // MARK: Lookup

  /// The Vary index a stored variant was written under (its extensions name it), so a
  /// refresh writes the new variant where lookups will find it without a new index.
  static func index(of key: CacheKey, _ ext: EntryExtensions) -> VaryIndex? {
    guard key.variance != nil, !ext.varyNames.isEmpty else { return nil }
    return VaryIndex(names: ext.varyNames, generation: ext.generation)
  }

  struct VaryIndex: Sendable {
    var names: [String]
    var generation: UInt64
  }

  enum Lookup {
    case hit(CacheHit<Store.Hit>, key: CacheKey, ext: EntryExtensions)
    case miss(index: VaryIndex?)
  }

  /// Two-step lookup: the primary key holds either the response or a Vary index naming
  /// the request fields that select the variant.
  private func lookup(_ key: CacheKey, request: HTTPHeaders) async throws(CacheError) -> Lookup {
    guard var found = try await store.lookup(key) else { return .miss(index: nil) }
    let ext = EntryExtensions(decoding: found.meta.extensions)
    guard ext.isVaryIndex else { return .hit(found, key: key, ext: ext) }
    try? await found.handler.finish()
    let index = VaryIndex(names: ext.varyNames, generation: ext.generation)
    let variantKey = key.withVariance(Variance.hash(names: ext.varyNames, generation: ext.generation, request: request))
    guard let variant = try await store.lookup(variantKey) else { return .miss(index: index) }
    return .hit(variant, key: variantKey, ext: EntryExtensions(decoding: variant.meta.extensions))
  }

  // MARK: Serving

  private func serveFromStore<Handler: HitHandler>(
    _ hit: inout CacheHit<Handler>, request: ServerRequest, status: CacheStatus, writer: inout ResponseWriter
  ) async throws {
    let ext = EntryExtensions(decoding: hit.meta.extensions)
    let now = CacheTime.now()
    let age = Freshness.currentAge(
      initialAge: ext.initialAge, responseTime: hit.meta.updated.secondsSinceEpoch, now: now.secondsSinceEpoch)
    try await serveHit(&hit, ext: ext, age: age, request: request, status: status, writer: &writer)
  }

  private func serveHit<Handler: HitHandler>(
    _ hit: inout CacheHit<Handler>, ext: EntryExtensions, age: Int64, request: ServerRequest, status: CacheStatus,
    writer: inout ResponseWriter
  ) async throws {
    var headers = Self.headers(of: hit.meta.response)
    headers.replaceOrAdd(name: "Age", value: "\(max(0, age))")
    headers.add(name: "Cache-Status", value: status.description)
    do {
      try await HitResponder.respond(
        handler: &hit.handler, status: hit.meta.response.status, headers: headers, bodySize: ext.bodySize,
        request: request.head, writer: &writer)
    } catch {
      try? await hit.handler.finish()
      throw error
    }
    try? await hit.handler.finish()
  }

  /// `prefix`: body chunks already read from the origin.
  private func forward(
    _ response: OriginResponse, request: HTTPRequestHead, status: CacheStatus, writer: inout ResponseWriter,
    prefix: [ByteBuffer] = []
  ) async throws {
    var headers = HopByHop.stripped(response.head.headers)
    headers.add(name: "Cache-Status", value: status.description)
    writer.writeHead(status: response.head.status, headers: headers)
    for chunk in prefix { try await writer.writeBody(chunk) }
    // What the origin sends from here goes out as it comes; the head and the bytes in hand
    // go with the first of it, or with the end when the body is all in hand.
    writer.sendsEachChunk = true
    while let chunk = try await response.body.read() { try await writer.writeBody(chunk) }
    try await writer.end()
  }

  /// Forwards a request the cache does not handle; a successful unsafe method
  /// invalidates the cached URL (RFC 9111 §4.4).
  private func passThrough(
    _ request: ServerRequest, status: inout CacheStatus, writer: inout ResponseWriter, invalidate: Bool
  ) async throws {
    count(.passes, &status)
    let head = Self.originHead(for: request.head, fill: false)
    if let body = request.body {
      try await passThrough(request, head: head, body: body, status: &status, writer: &writer, invalidate: invalidate)
      return
    }
    let response: OriginResponse
    do {
      response = try await fetch(head)
    } catch {
      try await originFailure(error, status: &status, writer: &writer)
      return
    }
    try await forwardPassed(response, request: request, status: status, writer: &writer, invalidate: invalidate)
  }

  /// A pass with a body: a child task streams it from the client to the origin while this
  /// task waits for the origin's answer and forwards it, which may come before the body
  /// ends (an early 413 or 401). Once the origin takes no more (it answered early or
  /// failed), the child stops reading: the response says Connection: close and the server
  /// reads a bounded rest before closing, rather than the whole body. The handler returns
  /// only once the child has stopped, since the server reads on from the same stream.
  private func passThrough(
    _ request: ServerRequest, head: HTTPRequestHead, body: RequestBody, status: inout CacheStatus,
    writer: inout ResponseWriter, invalidate: Bool
  ) async throws {
    var framed = head
    if body.declaredLength == nil { framed.headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked") }
    let originHead = framed
    let upload = BodyPipe()
    let uploaded = Flag()
    let clientFailed = Flag()
    let originName = "\(configuration.origin)"
    // The body is read from here on: a client waiting for 100 Continue may send it now.
    try await writer.sendContinueIfExpected(request.head)
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask {
        try await Self.pump(body, into: upload, uploaded: uploaded, clientFailed: clientFailed, origin: originName)
      }
      let response: OriginResponse
      do throws(OriginError) {
        let start = ContinuousClock.now
        response = try await origin.send(originHead, upload: upload)
        metrics.recordOriginFirstByte(since: start)
      } catch {
        upload.cancel()
        // A client that failed mid-body made the origin request fail: its error wins (413
        // for a body over the limit).
        if clientFailed.value.load(ordering: .acquiring) {
          try await group.waitForAll()
        }
        // Else the origin failed: 502/504 at once, not after the rest of a slow upload.
        let cutShort = !uploaded.value.load(ordering: .acquiring)
        if cutShort { writer.closeAfterResponse() }
        try await originFailure(error, status: &status, writer: &writer)
        // A client that stopped sending on the answer must not hold the handler until
        // its idle timeout: the connection closes after the answer anyway.
        if cutShort { group.cancelAll() }
        try? await group.waitForAll()
        return
      }
      let cutShort = !uploaded.value.load(ordering: .acquiring)
      if cutShort { writer.closeAfterResponse() }
      try await forwardPassed(response, request: request, status: status, writer: &writer, invalidate: invalidate)
      if cutShort {
        group.cancelAll()
        try? await group.waitForAll()
      } else {
        try await group.waitForAll()
      }
    }
  }

  /// Copies the client's body into the upload pipe, and stops reading once the origin
  /// refuses more (it answered early or failed): the rest is the server's to bound. A
  /// failure also ends the upload with an error, so the origin connection closes rather
  /// than end a cut body.
  private static func pump(
    _ body: RequestBody, into upload: BodyPipe, uploaded: Flag, clientFailed: Flag, origin: String
  ) async throws {
    do {
      while let chunk = try await body.read() {
        if !(await upload.send(chunk)) { return }
      }
    } catch {
      clientFailed.value.store(true, ordering: .releasing)
      upload.finish(error: .connectionFailed(origin: origin, reason: "request body: \(error)"))
      throw error
    }
    uploaded.value.store(true, ordering: .releasing)
    upload.finish()
  }

  /// Forwards the origin's answer to a pass; a successful unsafe method invalidates the
  /// cached URL (RFC 9111 §4.4).
  private func forwardPassed(
    _ response: OriginResponse, request: ServerRequest, status: CacheStatus, writer: inout ResponseWriter,
    invalidate: Bool
  ) async throws {
    if invalidate, request.head.method != .GET, request.head.method != .HEAD, request.head.method != .OPTIONS,
      (200..<400).contains(response.head.status.code)
    {
      _ = try? await store.purge(Self.cacheKey(for: request.head).compact, reason: .invalidation)
    }
    try await forward(response, request: request.head, status: status, writer: &writer)
  }

  private func originFailure(_ error: OriginError, status: inout CacheStatus, writer: inout ResponseWriter) async throws
  {
    count(.originErrors, &status)
    logger.debug("origin failed", metadata: ["error": "\(error)"])
    status.detail = error.responseStatus == 504 ? "origin-timeout" : "origin-error"
    try await writer.respond(
      status: HTTPResponseStatus(statusCode: Int(error.responseStatus)), headers: status.headers,
      text: "\(error.responseStatus == 504 ? "origin timeout" : "bad gateway")\n")
  }

  // MARK: Purge

  private func purge(_ request: ServerRequest, writer: inout ResponseWriter) async throws {
    guard PurgeAuthorization.isAuthorized(request.head.headers, token: configuration.purgeToken) else {
      let code: HTTPResponseStatus = configuration.purgeToken == nil ? .methodNotAllowed : .unauthorized
      try await writer.respond(status: code, text: "purge needs a valid bearer token\n")
      return
    }
    let removed = try await purge(primaryKey: Self.cacheKey(for: request.head))
    try await writer.respond(status: removed ? .ok : .notFound, text: removed ? "purged\n" : "not cached\n")
  }

  /// Removes the URL's entry, which is its response or its Vary index (the variants of a
  /// removed index can never be found again: their variance is salted by its generation).
  public func purge(primaryKey: CacheKey) async throws(CacheError) -> Bool {
    counters.count(.purges)
    return try await store.purge(primaryKey.compact, reason: .invalidation)
  }

  // MARK: Helpers

  /// Counts the request and notes the outcome for its latency observation.
  private func count(_ kind: ProxyCounters.Kind, _ status: inout CacheStatus) {
    counters.count(kind)
    status.outcome = kind
  }

  /// An origin request, timed to its response head (failures are counted, not timed).
  private func fetch(_ head: HTTPRequestHead) async throws(OriginError) -> OriginResponse {
    let start = ContinuousClock.now
    let response = try await origin.send(head)
    metrics.recordOriginFirstByte(since: start)
    return response
  }

  /// host + target: what identifies a resource. The host is lowercased (RFC 9110 §4.2.3).
  public static func cacheKey(for head: HTTPRequestHead) -> CacheKey {
    RequestKey.of(head)
  }

  /// A purge of `url` (`http://host/path?query` or `/path` with `host`).
  public static func cacheKey(url: String, host: String?) -> CacheKey? {
    var rest = Substring(url)
    if rest.hasPrefix("http://") {
      rest = rest.dropFirst(7)
    } else if rest.hasPrefix("https://") {
      rest = rest.dropFirst(8)
    }
    if rest.hasPrefix("/") {
      guard let host else { return nil }
      return CacheKey(primary: host.lowercased() + rest)
    }
    guard let slash = rest.firstIndex(of: "/") else { return CacheKey(primary: rest.lowercased() + "/") }
    return CacheKey(primary: rest[..<slash].lowercased() + rest[slash...])
  }

  static func requestCacheControl(_ headers: HTTPHeaders) -> CacheControl {
    var cc = CacheControl(values: headers[canonicalForm: "cache-control"].map(String.init))
    // Pragma: no-cache counts only without Cache-Control (RFC 9111 §5.4).
    if !headers.contains(name: "cache-control"),
      headers[canonicalForm: "pragma"].contains(where: { $0.lowercased() == "no-cache" })
    {
      cc.noCache = true
    }
    return cc
  }

  static func originHead(for head: HTTPRequestHead, fill: Bool) -> HTTPRequestHead {
    var headers = HopByHop.stripped(head.headers)
    // Answered here (`ResponseWriter.sendContinueIfExpected`), as nginx does: the upload
    // to the origin does not wait for a 100 of its own.
    headers.remove(name: "expect")
    if fill {
      for name in ["range", "if-range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since"] {
        headers.remove(name: name)
      }
    }
    return HTTPRequestHead(version: .http1_1, method: fill ? .GET : head.method, uri: head.uri, headers: headers)
  }

  /// What is stored of a response's fields: no hop-by-hop fields, no Age (recomputed on
  /// every hit) and no Set-Cookie (never shared).
  static func storableHeaders(_ headers: HTTPHeaders) -> HTTPHeaders {
    var stored = HopByHop.stripped(headers)
    stored.remove(name: "age")
    stored.remove(name: "set-cookie")
    stored.remove(name: "cache-status")
    return stored
  }

  static func headers(of response: CacheMeta.ResponseHeader) -> HTTPHeaders {
    HTTPHeaders(response.fields.map { ($0.name, $0.value) })
  }

  static func meta(
    plan: Cacheability.Plan, status: UInt16, reason: String, headers: HTTPHeaders, responseTime: CacheTime,
    variance: CacheHash?, generation: UInt64
  ) -> CacheMeta {
    entry(
      plan: plan, status: status, reason: reason, headers: headers, responseTime: responseTime, variance: variance,
      generation: generation
    ).meta
  }

  /// The meta, and its extensions as built, for a caller that serves the entry at once
  /// (decoding them back from the meta costs more than the rest of building it).
  static func entry(
    plan: Cacheability.Plan, status: UInt16, reason: String, headers: HTTPHeaders, responseTime: CacheTime,
    variance: CacheHash?, generation: UInt64
  ) -> (meta: CacheMeta, ext: EntryExtensions) {
    var ext = EntryExtensions()
    ext.initialAge = plan.initialAge
    ext.mustRevalidate = plan.mustRevalidate
    ext.varyNames = plan.varyNames
    ext.generation = generation
    ext.bodySize = headers.first(name: "content-length").flatMap(Int.init)
    func clamp(_ v: Int64) -> UInt32 { UInt32(clamping: max(0, v)) }
    let meta = CacheMeta(
      freshUntil: responseTime.adding(seconds: plan.lifetime - plan.initialAge), created: responseTime,
      staleWhileRevalidateSeconds: clamp(plan.staleWhileRevalidate), staleIfErrorSeconds: clamp(plan.staleIfError),
      variance: variance,
      response: .init(status: status, reason: reason, fields: headers.map { .init($0.name, $0.value) }),
      extensions: ext.encoded())
    return (meta, ext)
  }
}

extension CacheStatus {
  var headers: HTTPHeaders { ["Cache-Status": description] }
}

extension Duration {
  var milliseconds: Int64 {
    let (seconds, attoseconds) = components
    return seconds * 1000 + attoseconds / 1_000_000_000_000_000
  }
}
