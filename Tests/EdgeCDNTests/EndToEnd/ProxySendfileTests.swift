import EdgeCDNStore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

@testable import EdgeCDN

#if canImport(Glibc)
  import Glibc
#endif

/// Hits on bodies the RAM tier keeps in a memfd go out as file regions (sendfile): the
/// bytes must be exact on every path (GET, HEAD, Range), and a client that leaves in the
/// middle must not keep the file open.
@Suite struct ProxySendfileTests {
  /// Printable bytes that differ from offset to offset, so a misplaced piece shows.
  static func body(_ size: Int, seed: UInt32) -> String {
    var state = seed
    let bytes = (0..<size).map { _ -> UInt8 in
      state = state &* 1_664_525 &+ 1_013_904_223
      return 33 + UInt8((state >> 24) % 94)
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  static func key(_ uri: String) -> CacheKey {
    CachingProxy<MemoryStore>.cacheKey(
      for: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: ["Host": "example.test"]))
  }

  static func fileBody(_ h: ProxyHarness, _ uri: String) -> FileBody? {
    h.store.immediateLookup(key(uri), maxBodyBytes: .max, readsBody: false) { _, _, _ in true }?.fileBody
  }

  /// The descriptor of `uri`'s RAM file and its inode, holding nothing (a debug build keeps
  /// a local alive to the end of its scope, which would keep the file open).
  static func openFile(_ h: ProxyHarness, _ uri: String) -> (descriptor: CInt, inode: UInt64)? {
    guard let file = fileBody(h, uri), let inode = inode(file.file.descriptor) else { return nil }
    return (file.file.descriptor, inode)
  }

  static func inode(_ descriptor: CInt) -> UInt64? {
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { return nil }
    return UInt64(status.st_ino)
  }

  @Test(arguments: [1 << 20, 200 << 10])
  func hitsAreByteExact(size: Int) async throws {
    try await ProxyHarness.run { h in
      let text = Self.body(size, seed: UInt32(size))
      h.origin.route("/o", reply: .text(text, ["Cache-Control": "max-age=60"]))
      let miss = try await h.get("/o")
      #expect(miss.body == text)
      try await h.eventually("the fill to commit to a RAM file") { Self.fileBody(h, "/o") != nil }
      for _ in 0..<3 {
        let hit = try await h.get("/o")
        #expect(hit.status == 200)
        #expect(hit.cacheStatus.contains("hit"))
        #expect(hit["content-length"] == "\(size)")
        #expect(hit.body.count == size)
        #expect(hit.body == text)
      }
      let head = try await h.request("/o", method: .HEAD)
      #expect(head.status == 200)
      #expect(head["content-length"] == "\(size)")
      #expect(head.body.isEmpty)
      for (start, end) in [(0, 0), (65_530, 65_600), (1000, size - 1), (size - 10, size - 1)] {
        let range = try await h.get("/o", ["Range": "bytes=\(start)-\(end)"])
        #expect(range.status == 206)
        #expect(range["content-range"] == "bytes \(start)-\(end)/\(size)")
        let utf8 = Array(text.utf8)
        #expect(range.body == String(decoding: utf8[start...end], as: UTF8.self), "bytes=\(start)-\(end)")
      }
      // After the HEAD: a GET on the same connection still gets the whole body.
      #expect(try await h.get("/o").body == text)
      #expect(h.origin.count("/o") == 1)
    }
  }

  /// HTTP/1.0 without keep-alive: the fast path's close-after-write branch.
  /// A large body goes out corked (`WireResponder.corkedBodyBytes`); the cork must come
  /// off after it, or every later small response on the connection would wait for the
  /// kernel's 200 ms cork timer.
  @Test func smallResponsesAfterACorkedBodyAreNotHeldBack() async throws {
    try await ProxyHarness.run { h in
      let size = 1 << 20
      h.origin.route("/big", reply: .text(Self.body(size, seed: 9), ["Cache-Control": "max-age=60"]))
      h.origin.route("/small", reply: .text("s", ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/big")
      _ = try await h.get("/small")
      try await h.eventually("the fill to commit") { Self.fileBody(h, "/big") != nil }
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      var quick = 0
      var expected = 0
      for _ in 0..<8 {
        try await client.send("GET /big HTTP/1.1\r\nHost: example.test\r\n\r\n")
        expected += size
        // Generous: under the whole suite a 1 MiB hit to this client has taken over 5 s
        // (seen before this test's subject changed); the cork is what is tested here.
        let bigStart = ContinuousClock.now
        #expect(
          try await client.waitFor(milliseconds: 20000) { $0.receivedCount > expected },
          "\(client.receivedCount) bytes of more than \(expected) after \(ContinuousClock.now - bigStart), closed: \(client.isClosed)"
        )
        let before = client.receivedCount
        let start = ContinuousClock.now
        try await client.send("GET /small HTTP/1.1\r\nHost: example.test\r\n\r\n")
        #expect(
          try await client.waitFor(milliseconds: 20000) {
            $0.receivedEnds(with: "\r\n\r\ns") && $0.receivedCount > before
          }
        )
        // Stuck corked, a small response waits for the kernel's 200 ms timer every time.
        if ContinuousClock.now - start < .milliseconds(150) { quick += 1 }
        expected = client.receivedCount
      }
      await client.close()
      #expect(quick >= 1, "small responses after a corked one were all held back: \(quick) of 8 quick")
    }
  }

  /// File-body hits queued behind a slower request on the same connection are answered
  /// by `ImmediateResponseHandler` (behind the pipelining handler) as file regions: whole,
  /// in order, and the last one closes the connection as asked.
  @Test func pipelinedFileBodyHitsBehindAMissAreWholeAndInOrder() async throws {
    try await ProxyHarness.run { h in
      let size = 200 << 10
      let text = Self.body(size, seed: 13)
      try await h.store("/p", body: text, fields: [.init("Content-Length", "\(size)")])
      #expect(Self.fileBody(h, "/p") != nil)
      var slow = OriginReply.text("slow-answer", ["Cache-Control": "no-store"])
      slow.delayMilliseconds = 200
      h.origin.route("/slow", reply: slow)
      let client = try await RawClient(port: h.app.server.localAddress?.port ?? 0)
      try await client.send(
        "GET /slow HTTP/1.1\r\nHost: example.test\r\n\r\nGET /p HTTP/1.1\r\nHost: example.test\r\n\r\n"
          + "GET /p HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
      #expect(try await client.waitFor(milliseconds: 10000) { $0.isClosed })
      let received = client.text
      #expect(received.ranges(of: "HTTP/1.1 200").count == 3)
      #expect(received.ranges(of: text).count == 2, "both file bodies whole")
      let slowAt = received.firstRange(of: "slow-answer")
      let fileAt = received.firstRange(of: text)
      #expect(slowAt != nil && fileAt != nil)
      if let slowAt, let fileAt { #expect(slowAt.lowerBound < fileAt.lowerBound, "in request order") }
      #expect(received.hasSuffix(text))
    }
  }

  @Test func connectionCloseHitIsWhole() async throws {
    try await ProxyHarness.run { h in
      let text = Self.body(300 << 10, seed: 11)
      h.origin.route("/c", reply: .text(text, ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/c")
      try await h.eventually("the fill to commit") { Self.fileBody(h, "/c") != nil }
      let port = h.app.server.localAddress?.port ?? 0
      let client = try await RawClient(port: port)
      try await client.send("GET /c HTTP/1.0\r\nHost: example.test\r\n\r\n")
      #expect(try await client.waitFor(milliseconds: 20_000) { $0.isClosed })
      let received = client.text
      let bodyStart = try #require(received.firstRange(of: "\r\n\r\n"))
      #expect(received[..<bodyStart.lowerBound].contains("Content-Length: \(300 << 10)"))
      #expect(String(received[bodyStart.upperBound...]) == text)
      await client.close()
    }
  }

  @Test func aClientThatLeavesMidBodyLeavesNothingOpen() async throws {
    try await ProxyHarness.run { h in
      let size = 1 << 20
      let text = Self.body(size, seed: 3)
      h.origin.route("/l", reply: .text(text, ["Cache-Control": "max-age=60"]))
      _ = try await h.get("/l")
      try await h.eventually("the fill to commit") { Self.fileBody(h, "/l") != nil }
      let (descriptor, inode) = try #require(Self.openFile(h, "/l"))
      let port = h.app.server.localAddress?.port ?? 0
      // Clients that never read: the server's write stalls on a full socket, then they go.
      for _ in 0..<4 {
        let client = try await RawClient(port: port, autoRead: false)
        try await client.send("GET /l HTTP/1.1\r\nHost: example.test\r\n\r\n")
        try await Task.sleep(for: .milliseconds(50))
        await client.close()
      }
      // And some that read a little first (through a small window, so that they leave
      // mid-body).
      for _ in 0..<4 {
        let client = try await RawClient(port: port, receiveBuffer: 64 << 10)
        try await client.send("GET /l HTTP/1.1\r\nHost: example.test\r\n\r\n")
        _ = try await client.waitFor(milliseconds: 5000) { $0.text.utf8.count > 1000 }
        await client.close()
      }
      // The server is fine and the object still whole.
      #expect(try await h.get("/l").body == text)
      // Purged, the file closes once the abandoned writes are over.
      _ = try await h.store.purge(Self.key("/l").compact, reason: .invalidation)
      try await h.eventually("the RAM file to close") { Self.inode(descriptor) != inode }
      #expect(Self.inode(descriptor) != inode)
    }
  }

  /// A client that takes a large body more slowly than the idle timeout (16 KiB every
  /// 10 ms through a small receive buffer) still gets all of it: the async path sends a
  /// file body in slices, each write telling the idle timer the client is still taking
  /// it. As one region the body was a single write, and the connection was closed
  /// after the timeout with more of the region unsent than the socket buffers hold
  /// (the body is larger than the 4 MiB a loopback send buffer grows to). The timeout is
  /// 2 s, not 1: under the whole suite on 2 cores the server's own writes stalled for over
  /// a second in about one run in three, and the test read that as the bug; the body
  /// still takes about 5 s, so without slices the connection is still cut.
  ///
  /// The reads are issued from the connection's event loop (`PacedReads`), not by the
  /// test's task between `Task.sleep`s: with the store's tiered suites running beside it,
  /// the cooperative pool (two threads on 2 cores, busy building and checking test bodies
  /// in debug) held each 10 ms sleep for about 70 ms, so the client took about 240 KB/s
  /// instead of 1.6 MB/s, steadily, with no gap the stall check saw. The kernel wakes a
  /// writer only once a third of the (4 MB) send buffer has drained, so at that pace no
  /// write went out for over 2 s, and the server rightly closed a client that slow; the
  /// test failed every time under `--filter "Tiered|Proxy"`.
  ///
  /// Now 5 s and 16 KiB every 25 ms (about 13 s for the body; unsliced, the client has
  /// about 7.5 of 8 MiB when it is cut): the server's own slice
  /// loop runs on the cooperative pool too, and the whole suite held it for over 2 s
  /// between two slices (a client cut after exactly 5 MiB, three CI runs): the idle timer
  /// counted our own stall as the client's. It no longer does (`ConnectionIdleTimer`: a
  /// response owed on a writable socket is the server's turn); an unsliced body still
  /// fails here, because the socket stays unwritable while NIO holds the whole region.
  @Test func aSlowClientGetsAWholeBodyPastTheIdleTimeout() async throws {
    try await ProxyHarness.run(configure: {
      $0.immediateHitMaxBodyBytes = 0
      $0.idleTimeoutSeconds = 5
    }) { h in
      let size = (8 << 20) - (64 << 10)
      // Straight into the store: a miss of 8 MiB through a proxy with a short idle timeout
      // could itself be cut on a loaded machine.
      try await h.store(
        "/s", body: Self.body(size, seed: 5), fields: [.init("Content-Length", "\(size)")])
      #expect(Self.fileBody(h, "/s") != nil)
      let collector = RawClient.Collector()
      let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelOption(.autoRead, value: false)
        .channelOption(.maxMessagesPerRead, value: 1)
        .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 16 << 10))
        .channelOption(.socketOption(.so_rcvbuf), value: 32 << 10)
        .channelInitializer { channel in
          channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
        }
        .connect(host: "127.0.0.1", port: h.app.server.localAddress?.port ?? 0).get()
      // A run where this client itself stalled (the whole suite on 2 cores can hold a task
      // or an event loop for seconds) is voided, not failed: a client that takes nothing
      // for the idle timeout is rightly closed, sliced or not.
      do {
        try await channel.writeAndFlush(ByteBuffer(string: "GET /s HTTP/1.1\r\nHost: example.test\r\n\r\n")).get()
      } catch {
        print("voided: the connection closed before the request went out (\(error))")
        return
      }
      let start = NIODeadline.now()
      let pace = PacedReads()
      let reads = channel.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(25)) { _ in
        pace.read(channel)
      }
      let deadline = ContinuousClock.now + .seconds(30)
      while collector.received.withLock({ $0.count }) <= size, !collector.closed.withLock({ $0 }),
        ContinuousClock.now < deadline
      {
        try await Task.sleep(for: .milliseconds(20))
      }
      reads.cancel()
      let received = collector.received.withLock { $0.count }
      let closed = collector.closed.withLock { $0 }
      let elapsed = (collector.lastReadAt.withLock { $0 } ?? start) - start
      try? await channel.close()
      let longestGap = pace.longestGap
      if received <= size, longestGap > .seconds(1) {
        print("voided: the client's event loop stalled for \(longestGap.nanoseconds / 1_000_000) ms between reads")
        return
      }
      // The kernel wakes the server's writer only once about a third of the (4 MB) send
      // buffer has drained; a client taking under about 0.27 MB/s leaves it without a write
      // for the 5 s timeout and is rightly cut, sliced or not. Paced at 0.65 MB/s, an
      // unsliced body is cut at 5 s; a client slowed below 0.4 MB/s by the suite's load
      // (0.3 MB/s in one CI run) proves nothing either way.
      let rate = Double(received) / max(0.001, Double(elapsed.nanoseconds) / 1e9)
      if received <= size, rate < 400_000 {
        print("voided: the client took \(Int(rate / 1000)) kB/s, too slow to tell a sliced body from a whole one")
        return
      }
      #expect(
        received > size,
        "\(received) bytes in \(elapsed.nanoseconds / 1_000_000) ms, connection \(closed ? "closed" : "open")")
      #expect(elapsed > .milliseconds(6000), "slower than the idle timeout: \(elapsed.nanoseconds / 1_000_000) ms")
    }
  }

  /// With the event-loop fast path off, every hit takes the async path (`HitResponder`),
  /// which sends whole bodies, single ranges and multipart parts as file regions too.
  @Test func asyncPathHitsAreByteExact() async throws {
    try await ProxyHarness.run(configure: { $0.immediateHitMaxBodyBytes = 0 }) { h in
      let size = 700 << 10
      let text = Self.body(size, seed: 21)
      let utf8 = Array(text.utf8)
      h.origin.route("/a", reply: .text(text, ["Cache-Control": "max-age=60", "Content-Type": "text/plain"]))
      #expect(try await h.get("/a").body == text)
      try await h.eventually("the fill to commit") { Self.fileBody(h, "/a") != nil }
      for _ in 0..<2 {
        let hit = try await h.get("/a")
        #expect(hit.cacheStatus.contains("hit"))
        #expect(hit.body == text)
      }
      let range = try await h.get("/a", ["Range": "bytes=100000-400000"])
      #expect(range.status == 206)
      #expect(range.body == String(decoding: utf8[100_000...400_000], as: UTF8.self))
      let multi = try await h.get("/a", ["Range": "bytes=0-9,500000-500009"])
      #expect(multi.status == 206)
      #expect(multi["content-length"] == "\(multi.body.utf8.count)")
      #expect(multi.body.contains(String(decoding: utf8[0...9], as: UTF8.self)))
      #expect(multi.body.contains(String(decoding: utf8[500_000...500_009], as: UTF8.self)))
      #expect(try await h.request("/a", method: .HEAD).body.isEmpty)
      // A client that leaves mid-body: the write fails, the file is let go.
      let (descriptor, inode) = try #require(Self.openFile(h, "/a"))
      let port = h.app.server.localAddress?.port ?? 0
      for _ in 0..<3 {
        let client = try await RawClient(port: port, autoRead: false)
        try await client.send("GET /a HTTP/1.1\r\nHost: example.test\r\n\r\n")
        try await Task.sleep(for: .milliseconds(50))
        await client.close()
      }
      #expect(try await h.get("/a").body == text)
      _ = try await h.store.purge(Self.key("/a").compact, reason: .invalidation)
      try await h.eventually("the RAM file to close") { Self.inode(descriptor) != inode }
      #expect(Self.inode(descriptor) != inode)
    }
  }
}

/// Issues a read on a connection whose `autoRead` is off each time it is called (from a
/// repeated task on the connection's event loop), and keeps the longest time between two
/// calls as the loop saw them: a loop held up is the client stalling, not the server.
final class PacedReads: Sendable {
  private let gaps = Mutex<(last: NIODeadline?, longest: TimeAmount)>((nil, .zero))

  func read(_ channel: any Channel) {
    channel.read()
    let now = NIODeadline.now()
    gaps.withLock { gaps in
      if let last = gaps.last { gaps.longest = max(gaps.longest, now - last) }
      gaps.last = now
    }
  }

  var longestGap: TimeAmount { gaps.withLock { $0.longest } }
}
