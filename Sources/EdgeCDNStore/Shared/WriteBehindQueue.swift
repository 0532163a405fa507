import Synchronization

/// A bounded queue of background jobs with one worker, that drops rather than waits.
///
/// Why drop: the jobs (uploads to a shared tier, retried purges) are work a client
/// must never wait for. When the shared tier is slower than the stream of jobs, the
/// buffer fills and new jobs are dropped and counted (`onDrop`), so memory stays
/// bounded and the request path never blocks.
public final class WriteBehindQueue<Job: Sendable>: Sendable {
  private let continuation: AsyncStream<Job>.Continuation
  private let worker: Task<Void, Never>
  private let onDrop: @Sendable (Job) -> Void
  private let counts = Atomic<Int>(0)
  private let dropped = Atomic<Int>(0)

  /// - Parameters:
  ///   - capacity: jobs waiting at most (one more may be running).
  ///   - handle: runs each job, one at a time, in arrival order.
  ///   - onDrop: called for each job refused because the queue was full.
  public init(
    capacity: Int, handle: @escaping @Sendable (Job) async -> Void, onDrop: @escaping @Sendable (Job) -> Void = { _ in }
  ) {
    let (stream, continuation) = AsyncStream.makeStream(
      of: Job.self, bufferingPolicy: .bufferingOldest(max(1, capacity)))
    self.continuation = continuation
    self.onDrop = onDrop
    self.worker = Task {
      for await job in stream { await handle(job) }
    }
  }

  deinit {
    continuation.finish()
  }

  /// Queues a job; false (and `onDrop`) when the queue is full or shut down.
  @discardableResult
  public func enqueue(_ job: Job) -> Bool {
    switch continuation.yield(job) {
    case .enqueued:
      counts.add(1, ordering: .relaxed)
      return true
    case .dropped:
      dropped.add(1, ordering: .relaxed)
      onDrop(job)
      return false
    case .terminated:
      return false
    @unknown default:
      return false
    }
  }

  /// Jobs accepted since the queue was made.
  public var enqueuedCount: Int { counts.load(ordering: .relaxed) }
  /// Jobs dropped because the queue was full.
  public var droppedCount: Int { dropped.load(ordering: .relaxed) }

  /// Stops accepting jobs and waits for the queued ones to run.
  public func shutdown() async {
    continuation.finish()
    await worker.value
  }
}
