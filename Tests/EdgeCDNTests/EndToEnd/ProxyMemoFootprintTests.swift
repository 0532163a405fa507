import EdgeCDNStore
import NIOCore
import NIOHTTP1
import Testing

@testable import EdgeCDN

/// The serialised head the fast path keeps in a RAM entry is charged to the RAM tier's
/// budget while kept, once, and its storage is exactly its bytes.
@Suite struct ProxyMemoFootprintTests {
  @Test func fastPathHeadIsChargedOnceAndExact() async throws {
    try await ProxyHarness.run { h in
      h.origin.route("/m", reply: .text("hello", ["Cache-Control": "max-age=60", "Content-Type": "text/plain"]))
      _ = try await h.get("/m")
      try await h.eventually("the fill to finish") { h.store.objectCount == 1 }
      let stored = h.store.usedBytes
      var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/m")
      head.headers.add(name: "Host", value: "example.test")
      let responder = try #require(h.app.proxy.immediateResponder)
      #expect(responder.immediateResponse(to: head, keepAlive: true) != nil)
      let memo = h.store.usedBytes - stored
      let key = RequestKey.of(host: "example.test", uri: "/m")
      #expect(h.store.footprint(of: key)?.memo == memo)
      let built = EncodedResponseHead(
        try #require(try await h.store.lookup(key)).meta.response, bodySize: 5, facts: .init())
      let kept = try #require(built.head)
      #expect(memo == built.heapFootprint)
      #expect(memo > kept.count)
      // Later hits use the kept head and charge nothing more.
      #expect(responder.immediateResponse(to: head, keepAlive: true) != nil)
      #expect(h.store.usedBytes == stored + memo)
    }
  }
}
