import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Counters that many threads add to at once, each thread in its own stripe (its own
/// cache lines); a reader sums the stripes.
///
/// Why: a fresh RAM hit costs some 15 µs of CPU split over two event loops, and it
/// used to add to five counters shared by both. An atomic add on a line that the other
/// core wrote last waits for the line to move between the cores; on a line the core
/// already owns it costs a few cycles. Reads (a /metrics scrape, a test) are rare and
/// may pay for the sum.
///
/// Every add is still atomic: a thread's stripe is its own only while there are no
/// more threads than stripes, and even then the sum must stay exact.
public final class StripedCounters: @unchecked Sendable {
  // @unchecked: `cells` is owned by this object, allocated once, never reallocated, and
  // only ever touched through its atomics.

  /// Counters per stripe.
  public let count: Int
  /// Cells per stripe: `count` rounded up to whole 128-byte blocks (a line and the line
  /// the prefetcher pairs with it), so that no two stripes share one.
  private let stride: Int
  private let cells: UnsafeMutablePointer<Atomic<Int>>

  /// Stripes per counter set: more than the event loops and busy pool threads of a
  /// small server; threads beyond it share stripes (still exact, merely contended).
  public static let stripeCount = 16
  private static let blockBytes = 128

  public init(count: Int) {
    precondition(count > 0, "a StripedCounters holds at least one counter")
    self.count = count
    let perBlock = Self.blockBytes / MemoryLayout<Atomic<Int>>.stride
    stride = (count + perBlock - 1) / perBlock * perBlock
    let total = stride * Self.stripeCount
    let raw = UnsafeMutableRawPointer.allocate(
      byteCount: total * MemoryLayout<Atomic<Int>>.stride, alignment: Self.blockBytes)
    cells = raw.bindMemory(to: Atomic<Int>.self, capacity: total)
    for index in 0..<total { (cells + index).initialize(to: Atomic(0)) }
  }

  deinit {
    cells.deinitialize(count: stride * Self.stripeCount)
    UnsafeMutableRawPointer(cells).deallocate()
  }

  /// Adds `value` to `counter` in the calling thread's stripe; returns that stripe's
  /// new value of it (not the sum).
  @inline(__always)
  @discardableResult
  public func add(_ value: Int, to counter: Int) -> Int {
    add(value, to: counter, stripe: ThreadStripe.current)
  }

  /// The same, with the caller's thread stripe: see `ThreadStripe.current` for why a hot
  /// path reads it first.
  @inline(__always)
  @discardableResult
  func add(_ value: Int, to counter: Int, stripe: Int) -> Int {
    cell(counter, stripe: stripe).pointee.wrappingAdd(value, ordering: .relaxed).newValue
  }

  /// The sum over the stripes: exact once the adds it should see have returned.
  public func sum(_ counter: Int) -> Int {
    var total = 0
    for stripe in 0..<Self.stripeCount { total &+= cell(counter, stripe: stripe).pointee.load(ordering: .relaxed) }
    return total
  }

  /// Each stripe's value of `counter`, for callers that keep state per stripe.
  func value(_ counter: Int, stripe: Int) -> Int { cell(counter, stripe: stripe).pointee.load(ordering: .relaxed) }

  @inline(__always)
  func cell(_ counter: Int, stripe: Int) -> UnsafeMutablePointer<Atomic<Int>> {
    cells + (stripe * stride + counter)
  }
}

/// The calling thread's stripe index: threads are numbered on first use, in order, so
/// that the first `StripedCounters.stripeCount` threads (the event loops start first)
/// each have a stripe of their own.
///
/// Hot paths read it before they load the objects they count into, and pass it down.
/// Why: reading it calls into the C library (`pthread_getspecific`), and a class
/// reference loaded before an opaque call is retained across it; every event loop
/// retaining the same sampler or counter object made its reference count a cache line
/// the cores fought over, on every hit, which is what striping is meant to avoid.
enum ThreadStripe {
  /// The thread's number plus one, kept in the pointer value itself (no allocation);
  /// never freed, so no destructor.
  private static let key: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key, nil)
    precondition(status == 0, "pthread_key_create failed with \(status): no thread-local slot is left")
    return key
  }()
  private static let nextThread = Atomic<Int>(0)

  @inline(__always)
  static var current: Int {
    let key = Self.key
    if let stored = pthread_getspecific(key) {
      return (Int(bitPattern: stored) &- 1) & (StripedCounters.stripeCount - 1)
    }
    return assign(key)
  }

  @inline(never)
  private static func assign(_ key: pthread_key_t) -> Int {
    let number = nextThread.wrappingAdd(1, ordering: .relaxed).oldValue
    pthread_setspecific(key, UnsafeRawPointer(bitPattern: number + 1))
    return number & (StripedCounters.stripeCount - 1)
  }
}
