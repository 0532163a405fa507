import NIOCore
import Synchronization
import Testing

@testable import EdgeCDN

/// The hand-off that carries upload backpressure: a full pipe stops the producer (the
/// client's body reader) until the consumer (the origin upload) takes a chunk.
@Suite struct BodyPipeTests {
  @Test func producerWaitsWhileFullAndConsumerGetsEverythingInOrder() async throws {
    try await withTimeout(seconds: 30) {
      let pipe = BodyPipe(capacity: 2)
      let sent = Mutex(0)
      let producer = Task {
        for i in 0..<5 {
          _ = await pipe.send(ByteBuffer(string: "\(i)"))
          sent.withLock { $0 += 1 }
        }
        pipe.finish()
      }
      // Nobody reads: the producer stops at the capacity.
      try await Task.sleep(for: .milliseconds(100))
      #expect(sent.withLock { $0 } <= 2)
      var received = ""
      while let chunk = try await pipe.next() { received += String(buffer: chunk) }
      await producer.value
      #expect(received == "01234")
    }
  }

  @Test func consumerGoingAwayReleasesTheProducer() async throws {
    try await withTimeout(seconds: 30) {
      let pipe = BodyPipe(capacity: 1)
      let producer = Task { () -> Bool in
        var accepted = true
        for i in 0..<10 where accepted { accepted = await pipe.send(ByteBuffer(string: "\(i)")) }
        return accepted
      }
      try await Task.sleep(for: .milliseconds(50))
      pipe.cancel()
      #expect(await producer.value == false)
    }
  }

  @Test func errorReachesTheConsumerAfterQueuedChunks() async throws {
    let pipe = BodyPipe()
    _ = await pipe.send(ByteBuffer(string: "a"))
    pipe.finish(error: .connectionFailed(origin: "o", reason: "reset"))
    #expect(try await pipe.next().map { String(buffer: $0) } == "a")
    await #expect(throws: OriginError.self) { _ = try await pipe.next() }
  }
}
