public import CoreMetrics
import EdgeCDNStore
import NIOCore
import NIOHTTP1

/// The proxy's latency histograms (docs/metrics.md, "Proxy latency"), as swift-metrics
/// timers so any backend records them; `edge-cdn` hands in its Prometheus factory.
///
/// Every handle is made here, once: recording is an index into an array and a call on a
/// pre-built timer, with no label formatting, dictionary lookup or allocation. The usual
/// backend (swift-prometheus) takes a lock per histogram observation, so the event-loop
/// hit path, where two loops would contend for it on every hit of a few microseconds,
/// records one hit in `fastHitSampleInterval`; the async path (misses, revalidations,
/// passes, hits that need a task) records every request, where a lock is noise beside
/// the task hops it already pays.
public final class ProxyMetrics: Sendable {
  /// Request received to response head handed to the connection, by outcome.
  let headDuration: [Timer]
  /// Request received to the whole response handed to the connection, by outcome.
  let completeDuration: [Timer]
  /// An origin request: from asking the pool for a connection to the response head.
  let originFirstByte: Timer
  /// Each event loop times one in `fastHitSampleInterval` of its own hits, without a
  /// line shared by the loops.
  private let fastHitSampler: LatencySampler

  public static let headDurationLabel = "edge_cdn_proxy_request_duration_seconds"
  public static let completeDurationLabel = "edge_cdn_proxy_request_complete_duration_seconds"
  public static let originFirstByteLabel = "edge_cdn_proxy_origin_first_byte_duration_seconds"

  /// The histogram names, for a backend that sets buckets by name.
  public static let durationLabels = [headDurationLabel, completeDurationLabel, originFirstByteLabel]

  /// Buckets for these histograms: an event-loop hit takes microseconds, a miss the
  /// origin's time, so they span 25 µs to 10 s (swift-prometheus's default starts at 5 ms).
  public static let durationBuckets: [Duration] = [
    .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
    .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
    .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
  ]

  public init(factory: any MetricsFactory = MetricsSystem.factory, fastHitSampleInterval: Int = 16) {
    func timers(_ label: String) -> [Timer] {
      ProxyCounters.Kind.allCases.map {
        Timer(label: label, dimensions: [("outcome", $0.label)], factory: factory)
      }
    }
    headDuration = timers(Self.headDurationLabel)
    completeDuration = timers(Self.completeDurationLabel)
    originFirstByte = Timer(label: Self.originFirstByteLabel, dimensions: [], factory: factory)
    self.fastHitSampler = LatencySampler(interval: fastHitSampleInterval)
  }

  /// Whether this event-loop request is timed: one in `fastHitSampleInterval`.
  @inline(__always)
  func sampleFastHit() -> Bool { fastHitSampler.shouldSample() }

  /// An event-loop hit: head and body are written in one go, so both histograms get the
  /// same observation.
  func recordFastHit(since start: NIODeadline) {
    let nanoseconds = Int64(clamping: NIODeadline.now().uptimeNanoseconds &- start.uptimeNanoseconds)
    headDuration[ProxyCounters.Kind.hits.rawValue].recordNanoseconds(nanoseconds)
    completeDuration[ProxyCounters.Kind.hits.rawValue].recordNanoseconds(nanoseconds)
  }

  /// A request served by the async path; `headSent` is nil when no head went out.
  func record(
    _ outcome: ProxyCounters.Kind, received: ContinuousClock.Instant, headSent: ContinuousClock.Instant?,
    completed: ContinuousClock.Instant?
  ) {
    if let headSent { headDuration[outcome.rawValue].recordNanoseconds((headSent - received).nanoseconds) }
    if let completed { completeDuration[outcome.rawValue].recordNanoseconds((completed - received).nanoseconds) }
  }

  func recordOriginFirstByte(since start: ContinuousClock.Instant) {
    originFirstByte.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
  }
}

/// Times the event-loop fast path: wraps it rather than living in it, so the responder
/// stays about answering and the clock reads happen only for sampled requests.
struct TimedImmediateResponder<Inner: ImmediateResponder>: ImmediateResponder {
  let inner: Inner
  let metrics: ProxyMetrics

  func immediateResponse(
    to head: HTTPRequestHead, keepAlive: Bool, connection: inout ImmediateConnectionMemo
  ) -> ImmediateResponse? {
    timed(&connection) { inner.immediateResponse(to: head, keepAlive: keepAlive, connection: &$0) }
  }

  func wireResponse(
    to request: WireRequest, keepAlive: Bool, connection: inout ImmediateConnectionMemo
  ) -> ImmediateResponse? {
    timed(&connection) { inner.wireResponse(to: request, keepAlive: keepAlive, connection: &$0) }
  }

  /// Times one answer when this request is sampled; a declined one records nothing.
  @inline(__always)
  private func timed(
    _ connection: inout ImmediateConnectionMemo,
    _ answer: (inout ImmediateConnectionMemo) -> ImmediateResponse?
  ) -> ImmediateResponse? {
    guard metrics.sampleFastHit() else { return answer(&connection) }
    let start = NIODeadline.now()
    guard let response = answer(&connection) else { return nil }
    metrics.recordFastHit(since: start)
    return response
  }
}

extension Duration {
  var nanoseconds: Int64 {
    let (seconds, attoseconds) = components
    return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
  }
}
