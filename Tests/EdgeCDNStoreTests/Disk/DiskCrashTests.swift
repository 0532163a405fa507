import Foundation
import NIOCore
import Synchronization
import TestSupport
import Testing

@testable import EdgeCDNStore

#if canImport(Glibc)
  import Glibc
#endif

/// The crash test: a child process (edge-cdn-bench's hidden `disk-crash-writer`)
/// writes objects as fast as it can and is killed with SIGKILL at a random moment;
/// the store is reopened and checked; again, on the same files, several times.
///
/// After each kill: every object the child reported durable (finished before a
/// completed flush) must be there with its exact bytes and meta, and any other object
/// found (finished later, or in flight) must be exact too: never torn.
@Suite("DiskStore survives kill -9 of a writing process", .hangGuard())
struct DiskCrashTests {
  /// Same as DiskCrashObjects in edge-cdn-bench (keep them equal).
  enum Objects {
    static func key(_ i: Int) -> CacheKey { CacheKey(namespace: "crash", primary: "object-\(i)") }
    static func size(_ i: Int) -> Int { [0, 100, 3000, 16_384, 20_000, 70_000, 150_000][i % 7] + i % 13 }
    static func body(_ i: Int) -> [UInt8] {
      var state = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 1
      return (0..<size(i)).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
      }
    }
  }

  static let regionSize = 1 << 20
  static let fileSize = 4096 + 128 * regionSize

  /// The bench executable next to the test bundle (swift build builds both).
  static func benchExecutable() -> String? {
    guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
    var folder = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // On Linux the tests run from <build>/debug/<package>PackageTests.xctest.
    if folder.lastPathComponent.hasSuffix(".xctest") { folder = folder.deletingLastPathComponent() }
    let candidate = folder.appendingPathComponent("edge-cdn-bench").path
    return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
  }

  @Test("kill -9 during heavy writes, reopen, verify; repeated", .timeLimit(.minutes(5)))
  func killDuringWrites() async throws {
    guard let bench = Self.benchExecutable() else {
      Issue.record("edge-cdn-bench not found beside the test bundle: run `swift build` before `swift test`")
      return
    }
    let directory = try TemporaryDirectory()
    let began = ContinuousClock.now
    var durableSoFar: [Int] = []
    var bodyBytesSoFar = 0
    var rounds = 0
    var killedWithObjects = 0
    var generator = SystemRandomNumberGenerator()
    while rounds < 5 && (rounds < 3 || ContinuousClock.now - began < .seconds(20)) {
      let start = rounds * 100_000
      rounds += 1
      let process = Process()
      process.executableURL = URL(fileURLWithPath: bench)
      process.arguments = [
        "disk-crash-writer", "--path", directory.path, "--region-size", "\(Self.regionSize)", "--size",
        "\(Self.fileSize)", "--start", "\(start)", "--count", "5000",
      ]
      // The child's output goes to a file we can poll: the kill comes at a random moment
      // after it has started finishing objects, however slowly a loaded machine starts it.
      let outputPath = directory.path + "/child-\(rounds).out"
      guard FileManager.default.createFile(atPath: outputPath, contents: nil) else {
        Issue.record("cannot create \(outputPath)")
        return
      }
      let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
      process.standardOutput = output
      process.standardError = FileHandle.nullDevice
      let exit = ChildExit()
      process.terminationHandler = { _ in exit.signal() }
      try process.run()
      let startedAt = ContinuousClock.now
      // Generous: a debug child on a 2-core machine under load can take many seconds to start.
      while ContinuousClock.now - startedAt < .seconds(60), process.isRunning,
        ((try? FileManager.default.attributesOfItem(atPath: outputPath)[.size] as? Int) ?? 0) == 0
      {
        try await Task.sleep(for: .milliseconds(20))
      }
      try await Task.sleep(for: .milliseconds(Int.random(in: 100...700, using: &generator)))
      kill(process.processIdentifier, SIGKILL)
      guard await exit.wait(upTo: .seconds(30)) else {
        Issue.record("round \(rounds): the child did not exit within 30 s of SIGKILL")
        return
      }
      try output.close()
      let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
      var done: [Int] = []
      var durable = start - 1
      for line in text.split(separator: "\n") {
        let parts = line.split(separator: " ")
        guard parts.count == 2, let i = Int(parts[1]) else { continue }
        if parts[0] == "done" { done.append(i) } else if parts[0] == "durable" { durable = max(durable, i) }
      }
      #expect(process.terminationReason == .uncaughtSignal, "the child must have been killed, not finished")
      if !done.isEmpty { killedWithObjects += 1 }

      let store = try await DiskStore.open(
        configuration: DiskStoreConfiguration(
          path: directory.path, size: Self.fileSize, regionSize: Self.regionSize, fragmentSize: 16 << 10,
          maxObjectSize: 1 << 20, flushIntervalMilliseconds: 20, reinsertion: .none))
      let durableNow = done.filter { $0 <= durable }
      for i in durableNow {
        let object = try await DiskTestSupport.read(store, Objects.key(i))
        #expect(object?.body == Objects.body(i), "round \(rounds): durable object \(i) must be there, exact")
        #expect(object?.meta.response.fields.first?.value == "\(i)")
      }
      // Anything else found (finished after the last flush, or in flight) is whole.
      let last = (done.max() ?? start) + 2
      for i in start...last where !durableNow.contains(i) {
        if let object = try await DiskTestSupport.read(store, Objects.key(i)) {
          #expect(object.body == Objects.body(i), "round \(rounds): object \(i) found torn")
        }
      }
      // Earlier rounds' durable objects stay while nothing can have been reclaimed.
      bodyBytesSoFar += done.reduce(0) { $0 + Objects.size($1) + 400 }
      if bodyBytesSoFar + 3 * rounds * Self.regionSize < Self.fileSize / 2 {
        for i in durableSoFar.shuffled(using: &generator).prefix(20) {
          #expect(try await DiskTestSupport.read(store, Objects.key(i))?.body == Objects.body(i))
        }
      }
      durableSoFar += durableNow
      try await store.close()
    }
    #expect(rounds >= 2)
    #expect(killedWithObjects >= 2, "the child must have written objects before most kills")
    #expect(durableSoFar.count >= 10, "only \(durableSoFar.count) objects were durable before the kills")
  }
}

/// The exit of a child process, awaited without blocking a thread of the cooperative
/// pool (`Process.waitUntilExit` would block one of its few threads) and bounded in time.
final class ChildExit: Sendable {
  private struct State {
    var exited = false
    var timedOut = false
    var waiter: CheckedContinuation<Bool, Never>?
  }

  private let state = Mutex(State())

  /// Called by `Process.terminationHandler`.
  func signal() { resume(true, markExited: true) }

  /// True once the child has exited; false when `limit` passes first.
  func wait(upTo limit: Duration) async -> Bool {
    let timer = Task {
      try? await Task.sleep(for: limit)
      guard !Task.isCancelled else { return }
      self.resume(false, markExited: false)
    }
    defer { timer.cancel() }
    return await withCheckedContinuation { continuation in
      let ready = state.withLock { state -> Bool? in
        if state.exited { return true }
        if state.timedOut { return false }
        state.waiter = continuation
        return nil
      }
      if let ready { continuation.resume(returning: ready) }
    }
  }

  private func resume(_ value: Bool, markExited: Bool) {
    let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
      if markExited { state.exited = true } else { state.timedOut = true }
      defer { state.waiter = nil }
      return state.waiter
    }
    waiter?.resume(returning: value)
  }
}
