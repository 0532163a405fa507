import EdgeCDNSimulation
import EdgeCDNStore
import Foundation
import Testing

@Suite("Trace simulator")
struct SimulationTests {
  static func temporaryFile(_ contents: String) throws -> String {
    let path = NSTemporaryDirectory() + "edge-cdn-trace-\(UInt64.random(in: 0...UInt64.max)).csv"
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  @Test("the CSV reader numbers objects by first request and keeps sizes and the footprint")
  func readsTrace() throws {
    let path = try Self.temporaryFile("1,a,100\n2,b,200\n3,a,100\n\n4,c,50\r\n")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let workload = try TraceReader.read(path: path)
    #expect(workload.objects == [0, 1, 0, 2])
    #expect(workload.sizes == [100, 200, 100, 50])
    #expect(workload.keys.count == 3)
    #expect(workload.footprint == 350)
  }

  @Test("a malformed line names the file and line; a missing file says so")
  func badTrace() throws {
    let path = try Self.temporaryFile("1,a,100\n2,b\n")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let error = #expect(throws: TraceReader.Failure.self) { try TraceReader.read(path: path) }
    #expect(error?.description.contains(":2: expected timestamp,key,size") == true)
    let missing = #expect(throws: TraceReader.Failure.self) { try TraceReader.read(path: "/nonexistent/trace.csv") }
    #expect(missing?.description.contains("cannot open trace") == true)
  }

  @Test("synthetic workloads are reproducible from the seed and follow their parameters")
  func syntheticIsSeeded() {
    let a = SyntheticWorkload(exponent: 1.0, requests: 20_000, objects: 2_000, seed: 7).generate()
    let b = SyntheticWorkload(exponent: 1.0, requests: 20_000, objects: 2_000, seed: 7).generate()
    let c = SyntheticWorkload(exponent: 1.0, requests: 20_000, objects: 2_000, seed: 8).generate()
    #expect(a.objects == b.objects && a.sizes == b.sizes)
    #expect(a.objects != c.objects)
    #expect(a.requestCount == 20_000)
    // Zipf 1.0: the most requested object takes a large share; one-hit wonders add new objects.
    var counts: [UInt32: Int] = [:]
    for object in a.objects { counts[object, default: 0] += 1 }
    #expect((counts.values.max() ?? 0) > 20_000 / 20)
    #expect(a.keys.count > 2_000 / 2)
    #expect(a.sizes.allSatisfy { $0 >= 1024 && $0 <= 16 << 20 })
  }

  @Test("a cache larger than the footprint misses only first requests; replay counts bytes")
  func replay() {
    let workload = SyntheticWorkload(exponent: 0.8, requests: 5_000, objects: 500, seed: 1).generate()
    let everything = CacheSimulation.run(workload, manager: ShardedLRU(capacity: workload.footprint * 2))
    #expect(abs(everything.objectMissRatio - Double(workload.keys.count) / 5_000) < 1e-9)
    let tiny = CacheSimulation.run(workload, manager: ShardedLRU(capacity: 1))
    #expect(tiny.objectMissRatio == 1)
    #expect(tiny.byteMissRatio == 1)
  }

  @Test("S3-FIFO misses less than LRU on a seeded Zipf workload with one-hit wonders")
  func s3fifoBeatsLRU() {
    let workload = SyntheticWorkload(exponent: 1.0, requests: 60_000, objects: 6_000, seed: 3).generate()
    let capacity = workload.footprint / 100
    let lru = CacheSimulation.run(workload, manager: EvictionPolicy.lru.makeManager(capacity: capacity, shards: 4))
    let s3fifo = CacheSimulation.run(
      workload, manager: EvictionPolicy.s3fifo.makeManager(capacity: capacity, shards: 4))
    #expect(s3fifo.objectMissRatio < lru.objectMissRatio)
  }
}
