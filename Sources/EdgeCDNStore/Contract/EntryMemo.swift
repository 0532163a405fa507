import Synchronization

/// A stored version of an object that keeps one value for its readers: the first one
/// stored, for as long as that version lives.
///
/// Why: a server renders every hit's response head from the stored meta, and a hot
/// object is read thousands of times a second; rendered once, the head is copied, not
/// rebuilt. The store cannot know what its caller renders, so it keeps an opaque object.
/// A new version of the object (a refill, a refresh by `updateMeta`) starts empty, so a
/// rendering never outlives the meta it came from.
public protocol EntryMemo: AnyObject, Sendable {
  /// What the first `keepMemo` stored, if it is a `T`.
  func memo<T: AnyObject & Sendable>(as type: T.Type) -> T?
  /// Stores `value` unless a value is there already; returns the value kept (an earlier
  /// one when a concurrent reader stored first), if it is a `T`.
  func keepMemo<T: AnyObject & Sendable>(_ value: T) -> T?
}

/// A memo that says what it holds on the heap. Why: a store with a byte budget charges
/// a memo for as long as it keeps it, so that the budget covers what an object really
/// costs (a serialised response head is a quarter of a small object). A memo that does
/// not conform is charged as a bare object.
public protocol MemoFootprint: AnyObject, Sendable {
  /// Heap bytes held by the memo, itself included (see `HeapFootprint`).
  var heapFootprint: Int { get }
}

/// The storage of an `EntryMemo`: one word in the entry, set once, read without a lock.
public struct EntryMemoSlot: ~Copyable, @unchecked Sendable {
  // Holds one retained reference, to a Sendable value (the only kind `keep` takes),
  // released when the slot goes: an unretained read of it is valid while the slot lives.
  private let slot = Atomic<Unmanaged<AnyObject>?>(nil)

  public init() {}

  deinit {
    slot.load(ordering: .acquiring)?.release()
  }

  /// Whether a value is kept.
  public var isSet: Bool { slot.load(ordering: .acquiring) != nil }

  public func value<T: AnyObject & Sendable>(as type: T.Type) -> T? {
    slot.load(ordering: .acquiring).flatMap { Self.cast($0.takeUnretainedValue(), to: T.self) }
  }

  /// Lends the kept value (nil when none) to `body`, unretained: the slot holds it for as
  /// long as the slot lives, and the caller keeps the slot alive for the call. Why: a hot
  /// entry's memo is read by every event loop, and a retain writes its reference count,
  /// a line all their cores then take turns owning.
  @inline(__always)
  public func withValue<R>(_ body: (Unmanaged<AnyObject>?) -> R) -> R {
    body(slot.load(ordering: .acquiring))
  }

  /// `as? T`, without the runtime's generic dynamic cast when the class is exactly `T`
  /// (always, for a memo's one kind of value): that cast was about 3% of a hit's CPU.
  @inline(__always)
  private static func cast<T: AnyObject>(_ object: AnyObject, to type: T.Type) -> T? {
    if ObjectIdentifier(Swift.type(of: object)) == ObjectIdentifier(T.self) {
      return unsafeDowncast(object, to: T.self)
    }
    return object as? T
  }

  public func keep<T: AnyObject & Sendable>(_ value: T) -> T? {
    let retained = Unmanaged<AnyObject>.passRetained(value)
    let (stored, original) = slot.compareExchange(expected: nil, desired: retained, ordering: .acquiringAndReleasing)
    if stored { return value }
    retained.release()
    return original.flatMap { Self.cast($0.takeUnretainedValue(), to: T.self) }
  }
}
