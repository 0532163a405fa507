import NIOCore
import Synchronization

/// A bounded hand-off of body chunks from one producer task to one consumer task: a
/// request body on its way to the origin (the client's side produces, the origin
/// connection's upload task consumes), or a fill's body relayed to its leader (the fill
/// task produces, `RelayedHitHandler` consumes).
///
/// The producer waits when `capacity` chunks are queued; while it waits it reads no more
/// from the client, so NIO stops reading and TCP flow control pushes back on the client:
/// the origin's pace reaches the uploader. A consumer that goes away (`cancel`: the origin
/// answered early or failed) makes `send` return false, so the producer stops.
final class BodyPipe: Sendable {
  private struct State {
    var chunks: [ByteBuffer] = []
    var head = 0
    var finished = false
    var failure: OriginError?
    var consumerGone = false
    var producer: CheckedContinuation<Bool, Never>?
    var consumer: CheckedContinuation<Void, Never>?
  }

  private let state = Mutex(State())
  let capacity: Int

  init(capacity: Int = 4) {
    self.capacity = capacity
  }

  /// Queues a chunk; waits while the queue is full. False when the consumer is gone.
  func send(_ chunk: ByteBuffer) async -> Bool {
    enum Step {
      case queued(CheckedContinuation<Void, Never>?)
      case full
      case gone
    }
    let step = state.withLock { s -> Step in
      if s.consumerGone { return .gone }
      s.chunks.append(chunk)
      if s.chunks.count - s.head >= capacity { return .full }
      let c = s.consumer
      s.consumer = nil
      return .queued(c)
    }
    switch step {
    case .gone: return false
    case .queued(let consumer):
      consumer?.resume()
      return true
    case .full:
      return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
        let resume = state.withLock { s -> (consumer: CheckedContinuation<Void, Never>?, now: Bool?) in
          if s.consumerGone { return (nil, false) }
          let c = s.consumer
          s.consumer = nil
          if s.chunks.count - s.head < capacity { return (c, true) }
          s.producer = continuation
          return (c, nil)
        }
        resume.consumer?.resume()
        if let now = resume.now { continuation.resume(returning: now) }
      }
    }
  }

  /// Ends the body: normally, or with the error the consumer will see after the queued chunks.
  func finish(error: OriginError? = nil) {
    let consumer = state.withLock { s -> CheckedContinuation<Void, Never>? in
      s.finished = true
      s.failure = error
      let c = s.consumer
      s.consumer = nil
      return c
    }
    consumer?.resume()
  }

  /// The consumer stops reading; the producer's waits end with false.
  func cancel() {
    let producer = state.withLock { s -> CheckedContinuation<Bool, Never>? in
      s.consumerGone = true
      s.chunks = []
      s.head = 0
      let p = s.producer
      s.producer = nil
      return p
    }
    producer?.resume(returning: false)
  }

  /// The next chunk, nil at the end of the body.
  func next() async throws(OriginError) -> ByteBuffer? {
    while true {
      enum Step {
        case chunk(ByteBuffer, CheckedContinuation<Bool, Never>?)
        case end(OriginError?)
        case wait
      }
      let step = state.withLock { s -> Step in
        if s.head < s.chunks.count {
          let chunk = s.chunks[s.head]
          s.head += 1
          if s.head == s.chunks.count {
            s.chunks.removeAll(keepingCapacity: true)
            s.head = 0
          }
          let p = s.producer
          s.producer = nil
          return .chunk(chunk, p)
        }
        if s.finished { return .end(s.failure) }
        return .wait
      }
      switch step {
      case .chunk(let chunk, let producer):
        producer?.resume(returning: true)
        return chunk
      case .end(let failure):
        if let failure { throw failure }
        return nil
      case .wait:
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
          let ready = state.withLock { s -> Bool in
            if s.head < s.chunks.count || s.finished { return true }
            s.consumer = continuation
            return false
          }
          if ready { continuation.resume() }
        }
      }
    }
  }
}
