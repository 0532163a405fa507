public import EdgeCDNStore
import Synchronization

/// How the conformance checks build and inspect one kind of Storage.
public struct StorageFixture<S: Storage>: Sendable {
  /// Builds a fresh, empty store that reports removals to `observer`.
  public var makeStorage: @Sendable (_ observer: any StorageObserver) async throws -> S
  /// The tier's hard byte budget, when it has one (check 11 runs only then).
  public var byteBudget: Int?
  /// Bytes the store holds now, committed and in flight (needed with `byteBudget`).
  public var usedBytes: (@Sendable (S) -> Int)?
  /// Committed objects now, to check totals after the concurrency stress.
  public var objectCount: (@Sendable (S) -> Int)?
  /// Releases what `makeStorage` created (files, folders).
  public var tearDown: @Sendable (S) async throws -> Void

  public init(
    makeStorage: @escaping @Sendable (_ observer: any StorageObserver) async throws -> S,
    byteBudget: Int? = nil,
    usedBytes: (@Sendable (S) -> Int)? = nil,
    objectCount: (@Sendable (S) -> Int)? = nil,
    tearDown: @escaping @Sendable (S) async throws -> Void = { _ in }
  ) {
    self.makeStorage = makeStorage
    self.byteBudget = byteBudget
    self.usedBytes = usedBytes
    self.objectCount = objectCount
    self.tearDown = tearDown
  }
}

/// Records what a store reports as removed.
public final class RemovalRecorder: StorageObserver {
  private let removals = Mutex<[StorageRemoval]>([])

  public init() {}

  public func storage(_ tier: String, removed removal: StorageRemoval) {
    removals.withLock { $0.append(removal) }
  }

  public var all: [StorageRemoval] { removals.withLock { $0 } }
}

/// A conformance violation: which check, what was expected, what happened.
public struct ConformanceFailure: Error, CustomStringConvertible {
  public var check: String
  public var message: String
  public var line: Int

  public var description: String { "[\(check)] \(message) (StorageConformance line \(line))" }
}
