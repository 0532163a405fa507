import CoreMetrics
import NIOCore
import Synchronization

/// A shared body read one chunk ahead by the task that opened it, each wait of the
/// reader limited in time and counted by the breaker.
///
/// Why read ahead in the opening task: a deadline per chunk needs the chunk read in a
/// task other than the reader's (so a deaf, partitioned tier cannot hold the reader);
/// a task per chunk cost a task, a timer and two thread hops per chunk. Here the task
/// that fetched the meta and opened the body goes on pulling it, one chunk ahead of
/// the reader, so a whole shared hit costs one task; the reader waits for a chunk only
/// when it is not there yet, and only then takes a deadline (`DeadlineWatch`).
final class TimedBodyStream: SharedBodyStream {
  private enum End {
    case finished
    case failed(CacheError)
  }

  private struct State {
    var base: (any SharedBodyStream)?
    /// The chunk read ahead, not taken yet.
    var ahead: ByteBuffer?
    var end: End?
    /// The reader waiting for a chunk, with the deadline of its wait.
    var reader: CheckedContinuation<Result<ByteBuffer?, CacheError>, Never>?
    var readerWatch: DeadlineWatch.Token?
    var waits: UInt64 = 0
    /// The pump waiting for the reader to take the chunk ahead (true: go on).
    var pump: CheckedContinuation<Bool, Never>?
  }

  private let state = Mutex(State())
  let client: SharedTierClient

  init(client: SharedTierClient) {
    self.client = client
  }

  /// Sets the tier's stream, before `pump` runs.
  func attach(_ base: any SharedBodyStream) {
    state.withLock { $0.base = base }
  }

  /// Pulls the body into the stream until its end, an error, or `cancel`. Runs in the
  /// task that opened the body; `delivered` is false when the opening call lost to its
  /// deadline, and then the tier's stream is only released.
  func pump(delivered: Bool) async {
    guard let base = state.withLock({ $0.base }) else { return }
    guard delivered else {
      await base.cancel()
      return
    }
    while await roomAhead() {
      let chunk: ByteBuffer?
      do { chunk = try await base.next() } catch {
        if case .cancelled = error {
        } else {
          client.breaker.recordFailure()
          client.metrics.sharedFailures.increment()
        }
        end(.failed(error))
        return
      }
      guard deliver(chunk) else {
        return
      }
    }
  }

  /// Waits until the chunk ahead is taken; false once the stream ended.
  private func roomAhead() async -> Bool {
    await withCheckedContinuation { continuation in
      let goOn = state.withLock { state -> Bool? in
        if state.end != nil { return false }
        if state.ahead == nil { return true }
        state.pump = continuation
        return nil
      }
      if let goOn { continuation.resume(returning: goOn) }
    }
  }

  /// Hands a chunk (nil: the end) to the reader or keeps it ahead; false when the pump should stop.
  private func deliver(_ chunk: ByteBuffer?) -> Bool {
    let (reader, watch, goOn) = state.withLock {
      state -> (CheckedContinuation<Result<ByteBuffer?, CacheError>, Never>?, DeadlineWatch.Token?, Bool) in
      guard state.end == nil else { return (nil, nil, false) }
      if chunk == nil { state.end = .finished }
      if let reader = state.reader {
        state.reader = nil
        defer { state.readerWatch = nil }
        return (reader, state.readerWatch, chunk != nil)
      }
      if chunk != nil { state.ahead = chunk }
      return (nil, nil, chunk != nil)
    }
    if let watch { client.deadlines.remove(watch) }
    reader?.resume(returning: .success(chunk))
    return goOn
  }

  /// Ends the stream with an error or a cancellation, waking whoever waits; with
  /// `wait`, only while the reader is still in that wait. True when it ended it.
  @discardableResult
  private func end(_ end: End, onlyWait wait: UInt64? = nil) -> Bool {
    let ended = state.withLock {
      state -> (
        CheckedContinuation<Result<ByteBuffer?, CacheError>, Never>?, DeadlineWatch.Token?,
        CheckedContinuation<Bool, Never>?
      )?
      in
      if let wait, state.reader == nil || state.waits != wait { return nil }
      if state.end == nil { state.end = end }
      defer {
        state.reader = nil
        state.readerWatch = nil
        state.pump = nil
      }
      return (state.reader, state.readerWatch, state.pump)
    }
    guard let (reader, watch, pump) = ended else { return false }
    if let watch { client.deadlines.remove(watch) }
    if let reader {
      switch end {
      case .finished: reader.resume(returning: .success(nil))
      case .failed(let error): reader.resume(returning: .failure(error))
      }
    }
    pump?.resume(returning: false)
    return true
  }

  func next() async throws(CacheError) -> ByteBuffer? {
    let client = self.client
    let result = await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Result<ByteBuffer?, CacheError>, Never>) in
        enum Now {
          case ready(Result<ByteBuffer?, CacheError>, pump: CheckedContinuation<Bool, Never>?)
          case wait(UInt64)
        }
        let now = state.withLock { state -> Now in
          if let chunk = state.ahead {
            state.ahead = nil
            defer { state.pump = nil }
            return .ready(.success(chunk), pump: state.pump)
          }
          switch state.end {
          case .finished: return .ready(.success(nil), pump: nil)
          case .failed(let error): return .ready(.failure(error), pump: nil)
          case nil:
            state.waits &+= 1
            state.reader = continuation
            return .wait(state.waits)
          }
        }
        switch now {
        case .ready(let result, let pump):
          continuation.resume(returning: result)
          pump?.resume(returning: true)
        case .wait(let wait):
          let watch = client.deadlines.add(after: client.configuration.chunkTimeout) { [weak self] in
            self?.timeOut(wait)
          }
          // The chunk may have come (or the stream ended) while the watch was added.
          let keep = state.withLock { state -> Bool in
            guard state.reader != nil, state.waits == wait else { return false }
            state.readerWatch = watch
            return true
          }
          if !keep { client.deadlines.remove(watch) }
        }
      }
    } onCancel: {
      self.end(.failed(.cancelled(key: nil)))
    }
    return try result.get()
  }

  /// The reader's wait `wait` outlived the chunk time limit: the stream fails.
  private func timeOut(_ wait: UInt64) {
    let timeout = client.configuration.chunkTimeout
    let error = CacheError.unavailable(tier: client.name, reason: "read body timed out after \(timeout)")
    guard end(.failed(error), onlyWait: wait) else { return }
    client.breaker.recordFailure()
    client.metrics.sharedFailures.increment()
    releaseBase()
  }

  func cancel() async {
    close()
  }

  /// Ends the stream without waiting, for a reader dropped without `finish`: the
  /// read-ahead task would otherwise wait for it forever.
  func close() {
    let finished = state.withLock { state -> Bool in
      if case .finished = state.end { return true }
      return false
    }
    end(.failed(.cancelled(key: nil)))
    if !finished { releaseBase() }
  }

  /// Releases the tier's stream (a connection, a file) without waiting for it: a deaf
  /// tier must not hold the reader, and the pump, if it is still reading, ends with it.
  private func releaseBase() {
    guard
      let base = state.withLock({ state -> (any SharedBodyStream)? in
        defer { state.base = nil }
        return state.base
      })
    else { return }
    Task { await base.cancel() }
  }
}
