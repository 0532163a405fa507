import EdgeCDNStore
import NIOCore
import Testing

/// A copy into an upper tier (a promotion from disk, a fill from the shared tier)
/// reads a version, then commits it when its reader reaches the end; a client write of
/// a newer version that commits in between must not be replaced by the older copy.
@Suite("TieredStore copies racing client writes")
struct TieredCopyRaceTests {
  static let key = CacheKey(primary: "raced-object")
  static let older = TieredFixture.body(size: 30_000, seed: 1)
  static let newer = TieredFixture.body(size: 20_000, seed: 2)

  @Test("a promotion that read the older version does not leave it in RAM after a newer write")
  func promotionAfterNewerWrite() async throws {
    let disk = try await TieredFixture.disk()
    let store = Tiered(memory: try TieredFixture.memory(), disk: disk, configuration: .init(promotion: .always))
    try await TieredFixture.write(disk, Self.key, Self.older)

    // The disk hit starts copying the older version into RAM as it is read.
    var promoting = try #require(try await store.lookup(Self.key))
    try await TieredFixture.write(store, Self.key, Self.newer)
    #expect(try await TieredFixture.readAll(&promoting.handler) == Self.older, "a reader gets the version it found")
    try await promoting.handler.finish()

    let inMemory = try await TieredFixture.read(store.memoryTier, Self.key)
    #expect(inMemory != Self.older, "RAM must not hold the older version after the newer write committed")
    #expect(try await TieredFixture.read(store, Self.key) == Self.newer)
    try await TieredFixture.close(store)
  }

  @Test("a promotion that commits while a client write is under way does not outlive it")
  func promotionDuringWrite() async throws {
    let disk = try await TieredFixture.disk()
    let store = Tiered(memory: try TieredFixture.memory(), disk: disk, configuration: .init(promotion: .always))
    try await TieredFixture.write(disk, Self.key, Self.older)

    var promoting = try #require(try await store.lookup(Self.key))
    let writer = try await store.missHandler(for: Self.key, meta: TieredFixture.meta("newer"))
    try await writer.writeBody(ByteBuffer(bytes: Self.newer), eof: true)
    #expect(try await TieredFixture.readAll(&promoting.handler) == Self.older)
    try await promoting.handler.finish()
    _ = try await writer.finish()

    #expect(try await TieredFixture.read(store.memoryTier, Self.key) != Self.older)
    #expect(try await TieredFixture.read(store, Self.key) == Self.newer)
    try await TieredFixture.close(store)
  }

  @Test("a fill from the shared tier does not replace a newer local write in RAM or on disk")
  func sharedFillAfterNewerWrite() async throws {
    let shared = InMemorySharedTier()
    let store = Tiered(
      memory: try TieredFixture.memory(), disk: try await TieredFixture.disk(), shared: shared,
      // Long limits: a shared call timed out by a starved pool would be a miss here.
      configuration: .init(writeBehind: false, shared: .init(callTimeout: .seconds(30), chunkTimeout: .seconds(30))))
    try await shared.store(
      Self.key, meta: TieredFixture.meta("older"), body: ListStream([ByteBuffer(bytes: Self.older)]))

    var filling = try #require(try await store.lookup(Self.key))
    try await TieredFixture.write(store, Self.key, Self.newer)
    #expect(try await TieredFixture.readAll(&filling.handler) == Self.older)
    try await filling.handler.finish()

    #expect(try await TieredFixture.read(store.memoryTier, Self.key) != Self.older)
    let disk = try #require(store.disk)
    #expect(try await TieredFixture.read(disk, Self.key) != Self.older)
    try await TieredFixture.close(store)
  }

  @Test("a promotion with no write racing it stays in RAM")
  func promotionWithoutRaceStays() async throws {
    let disk = try await TieredFixture.disk()
    let store = Tiered(memory: try TieredFixture.memory(), disk: disk, configuration: .init(promotion: .always))
    try await TieredFixture.write(disk, Self.key, Self.older)
    // A finished write of another key in the same store must not stop it either.
    try await TieredFixture.write(store, CacheKey(primary: "another-object"), Self.newer)
    #expect(try await TieredFixture.read(store, Self.key) == Self.older)
    #expect(try await TieredFixture.read(store.memoryTier, Self.key) == Self.older)
    try await TieredFixture.close(store)
  }
}
