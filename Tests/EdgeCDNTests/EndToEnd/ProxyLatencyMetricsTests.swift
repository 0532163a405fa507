import CoreMetrics
import EdgeCDN
import EdgeCDNStore
import NIOCore
import NIOHTTP1
import Prometheus
import Testing

/// The latency histograms (docs/metrics.md, "Proxy latency") as a scrape of the admin
/// listener's /metrics shows them, from a Prometheus registry like edge-cdn's.
@Suite struct ProxyLatencyMetricsTests {
  struct RegistryExposition: MetricsExposition {
    let registry: PrometheusCollectorRegistry
    func render() async -> String { registry.emitToString() }
  }

  static func factory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
    var factory = PrometheusMetricsFactory(registry: registry)
    for label in ProxyMetrics.durationLabels { factory.durationHistogramBuckets[label] = ProxyMetrics.durationBuckets }
    return factory
  }

  /// The value of the sample `name{labels}` in a Prometheus text exposition.
  static func sample(_ text: String, _ name: String, _ labels: String = "") -> Double? {
    let prefix = labels.isEmpty ? "\(name) " : "\(name){\(labels)} "
    for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
      return Double(line.dropFirst(prefix.count))
    }
    return nil
  }

  @Test func requestLatencyHistogramsAppearOnMetricsWithPlausibleValues() async throws {
    let registry = PrometheusCollectorRegistry()
    let proxyMetrics = ProxyMetrics(factory: Self.factory(registry), fastHitSampleInterval: 1)
    try await ProxyHarness.run(metrics: RegistryExposition(registry: registry), proxyMetrics: proxyMetrics) { h in
      var slow = OriginReply.text("slow body", ["Cache-Control": "max-age=600"])
      slow.delayMilliseconds = 200
      h.origin.route("/slow", reply: slow)
      h.origin.route("/post", reply: .text("posted"))
      let clock = ContinuousClock()
      let missStart = clock.now
      #expect(try await h.get("/slow").status == 200)
      let missTook = clock.now - missStart
      // The miss is counted when it is answered, its fill commits later: a hit needs the
      // object in the store.
      try await h.eventually("the fill committed") { h.store.objectCount == 1 }
      for _ in 0..<3 { #expect(try await h.get("/slow").body == "slow body") }
      #expect(try await h.request("/post", method: .POST).body == "posted")

      let text = try await h.admin("/metrics").body
      let head = ProxyMetrics.headDurationLabel
      let complete = ProxyMetrics.completeDurationLabel
      // One miss, timed across the origin's 200 ms delay and no longer than the client saw.
      #expect(Self.sample(text, "\(head)_count", #"outcome="miss""#) == 1)
      let missSum = try #require(Self.sample(text, "\(head)_sum", #"outcome="miss""#))
      #expect(missSum >= 0.2)
      #expect(missSum <= Double(missTook.components.seconds) + 1)
      #expect(Self.sample(text, "\(head)_bucket", #"outcome="miss",le="0.1""#) == 0)
      #expect(Self.sample(text, "\(head)_bucket", #"outcome="miss",le="+Inf""#) == 1)
      #expect(Self.sample(text, "\(complete)_count", #"outcome="miss""#) == 1)
      let missComplete = try #require(Self.sample(text, "\(complete)_sum", #"outcome="miss""#))
      #expect(missComplete >= missSum)
      // Three hits (event loop or async path alike), each far quicker than the origin.
      #expect(Self.sample(text, "\(head)_count", #"outcome="hit""#) == 3)
      let hitSum = try #require(Self.sample(text, "\(head)_sum", #"outcome="hit""#))
      #expect(hitSum > 0)
      #expect(hitSum < missSum * 3)
      #expect(Self.sample(text, "\(head)_count", #"outcome="pass""#) == 1)
      // The origin's first byte: the miss (at least its 200 ms) and the pass.
      let origin = ProxyMetrics.originFirstByteLabel
      #expect(Self.sample(text, "\(origin)_count") == 2)
      #expect(try #require(Self.sample(text, "\(origin)_sum")) >= 0.2)
    }
  }

  @Test func fastHitsAreSampledOneInTheInterval() async throws {
    let registry = PrometheusCollectorRegistry()
    let proxyMetrics = ProxyMetrics(factory: Self.factory(registry), fastHitSampleInterval: 4)
    try await ProxyHarness.run(metrics: RegistryExposition(registry: registry), proxyMetrics: proxyMetrics) { h in
      h.origin.route("/a", reply: .text("a", ["Cache-Control": "max-age=600"]))
      _ = try await h.get("/a")
      try await h.eventually("the fill committed") { h.store.objectCount == 1 }
      for _ in 0..<8 { _ = try await h.get("/a") }
      let text = try await h.admin("/metrics").body
      let hits = Self.sample(text, "\(ProxyMetrics.headDurationLabel)_count", #"outcome="hit""#)
      // Event-loop hits are timed one in four; counters stay exact.
      #expect(h.app.proxy.stats[.hits] == 8)
      #expect(hits == 2)
    }
  }
}
