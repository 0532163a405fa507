import ArgumentParser
import EdgeCDNStore
import Foundation
import NIOCore

#if canImport(Glibc)
  import Glibc
#endif

/// The write-throughput part of `disk`: the store against plain large-block writes of
/// the same amount to the same file system in the same run.
///
/// Each round runs every writer once, into a fresh file in the same folder, in an order
/// that rotates from round to round (whoever writes first in a round was measured up
/// to 2x slower here: it pays for the page cache the previous writer left), so over
/// as many rounds as writers each one is first once. Medians per writer; the ratios
/// are ratios of those medians.
struct DiskWriteThroughput {
  /// One writer's figures over the rounds.
  struct Series {
    var name: String
    var megabytesPerSecond: [Double] = []
    var cpuSeconds: [Double] = []
  }

  enum Writer: String, CaseIterable {
    /// The store: 1 MiB objects written in 64 KiB chunks, then flush (fdatasync).
    case store
    /// The bench's own O_DIRECT writer: 4 MiB aligned pwrites to a preallocated file,
    /// fdatasync every second (the store's flush interval) and at the end.
    case rawDirect
    /// The same through the page cache.
    case rawBuffered
    /// A new sparse file, 4 MiB pwrites through the page cache, one fdatasync at the end
    /// (the yardstick of the first runs, kept for reference).
    case rawPlain
    /// fio, when installed: `--rw=write --bs=4M --ioengine=psync --end_fsync=1`, direct.
    case fioDirect
    /// fio through the page cache.
    case fioBuffered

    var label: String {
      switch self {
      case .store: "store"
      case .rawDirect: "raw direct"
      case .rawBuffered: "raw buffered"
      case .rawPlain: "raw plain"
      case .fioDirect: "fio direct"
      case .fioBuffered: "fio buffered"
      }
    }
  }

  let folder: String
  let megabytes: Int
  let rounds: Int
  let storeSize: Int
  let regionSize: Int
  /// The store's `directWrites`.
  let directWrites: Bool
  /// The writers to run (all by default; a subset for profiling one of them).
  var only: Set<String> = []

  static func fioPath() -> String? {
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
      let candidate = "\(directory)/fio"
      if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
  }

  /// Whether the file system of `folder` takes O_DIRECT (tmpfs does not): opens a file there with it.
  static func takesDirectWrites(_ folder: String) -> Bool {
    let probe = folder + "/direct-probe"
    let fd = open(probe, O_WRONLY | O_CREAT | O_CLOEXEC | directFlag, 0o644)
    if fd >= 0 { close(fd) }
    unlink(probe)
    return fd >= 0
  }

  /// Runs the rounds and records the figures of the writers that ran (a writer left
  /// out by `only`, or skipped, has no figures rather than zeros).
  func run(into report: inout BenchReport) async throws {
    let fio = Self.fioPath()
    let direct = Self.takesDirectWrites(folder)
    var skipped: [Writer] = []
    if fio == nil {
      print("fio not found on PATH: the fio writers are skipped")
      skipped += [.fioDirect, .fioBuffered]
    }
    if !direct {
      print("\(folder) refuses O_DIRECT (tmpfs?): the raw direct writer is skipped")
      skipped.append(.rawDirect)
    }
    let writers = Writer.allCases.filter {
      !skipped.contains($0) && (only.isEmpty || only.contains($0.rawValue))
    }
    var series: [Writer: Series] = [:]
    var storeDirect = false
    let throughputPath = folder + "/throughput"
    for round in 0..<max(1, rounds) {
      var line: [String] = []
      for step in 0..<writers.count {
        let writer = writers[(step + round) % writers.count]
        let cpuBefore = ProcessCPUTime.seconds()
        let megabytesPerSecond: Double
        switch writer {
        case .store:
          let store = try await DiskStore.open(
            configuration: DiskStoreConfiguration(
              path: throughputPath, size: storeSize, regionSize: regionSize, directWrites: directWrites))
          storeDirect = store.writesDirect
          let body = ByteBuffer(repeating: 0x5A, count: 64 << 10)
          let cpuStart = ProcessCPUTime.seconds()
          let start = ContinuousClock.now
          for i in 0..<megabytes {
            let handler = try await store.missHandler(for: DiskBenchmark.key("mb-\(i)"), meta: DiskBenchmark.meta)
            for c in 0..<16 { try await handler.writeBody(body, eof: c == 15) }
            _ = try await handler.finish()
          }
          try await store.flush()
          megabytesPerSecond =
            Double(megabytes << 20) / 1e6 / Measure.seconds(ContinuousClock.now - start)
          series[writer, default: Series(name: writer.label)].cpuSeconds.append(
            ProcessCPUTime.seconds() - cpuStart)
          // Closed and deleted before the next writer starts, so it holds nothing.
          try await store.close()
          DiskBenchmark.removeTree(throughputPath)
        case .rawDirect, .rawBuffered, .rawPlain:
          let path = folder + "/raw.data"
          megabytesPerSecond = try Self.rawWrite(
            path: path, megabytes: megabytes, preallocate: writer == .rawPlain ? nil : storeSize,
            direct: writer == .rawDirect)
          unlink(path)
        case .fioDirect, .fioBuffered:
          guard let fio else { continue }  // filtered out above
          let path = folder + "/fio.data"
          megabytesPerSecond = try Self.fioWrite(
            fio: fio, path: path, megabytes: megabytes, direct: writer == .fioDirect)
          unlink(path)
        }
        if writer != .store {
          series[writer, default: Series(name: writer.label)].cpuSeconds.append(
            ProcessCPUTime.seconds() - cpuBefore)
        }
        series[writer, default: Series(name: writer.label)].megabytesPerSecond.append(megabytesPerSecond)
        line.append("\(writer.label) \(BenchReport.format(megabytesPerSecond, decimals: 1))")
      }
      print("round \(round + 1) MB/s: " + line.joined(separator: ", "))
    }
    /// Nil for a writer that did not run.
    func median(_ writer: Writer) -> Double? { series[writer].map { Measure.median($0.megabytesPerSecond) } }
    func cpu(_ writer: Writer) -> Double? { series[writer].map { Measure.median($0.cpuSeconds) } }
    let store = median(.store)
    if let store {
      // The yardstick: fio when installed (the issue's choice), else the bench's own
      // writer; direct when the store writes direct, so both skip the page cache or both
      // go through it.
      let yardstick: Writer =
        fio != nil ? (storeDirect ? .fioDirect : .fioBuffered) : (storeDirect ? .rawDirect : .rawBuffered)
      let ran = series[yardstick] == nil ? " (not run)" : ""
      print(
        "store writes \(storeDirect ? "direct (O_DIRECT)" : "through the page cache"); yardstick: \(yardstick.label)\(ran)"
      )
      report.record("disk.write_mb_s", store)
      if let raw = median(yardstick) {
        report.record("disk.raw_write_mb_s", raw)
        report.record("disk.write_vs_raw", store / raw, decimals: 2)
      }
      report.record("disk.write_direct", storeDirect ? 1 : 0)
    }
    for writer in writers where writer != .store {
      guard let raw = median(writer) else { continue }
      let name = writer.label.replacingOccurrences(of: " ", with: "_")
      report.record("disk.raw_write_\(name)_mb_s", raw)
      if let store { report.record("disk.write_vs_\(name)", store / raw, decimals: 2) }
    }
    // CPU time (user + system, all threads) of each writer: on a shared machine the
    // wall-clock figures swing with the neighbours, this much less. fio runs in a child
    // process: its CPU is not counted here.
    for (writer, name) in [
      (Writer.store, "disk.write_cpu_s"), (.rawDirect, "disk.raw_write_direct_cpu_s"),
      (.rawBuffered, "disk.raw_write_buffered_cpu_s"),
    ] {
      if let seconds = cpu(writer) { report.record(name, seconds, decimals: 3) }
    }
  }

  /// Writes `megabytes` MiB sequentially in 4 MiB pwrites, into a file preallocated to
  /// `preallocate` bytes (as the store's is) with an fdatasync every second (the store's
  /// default flush interval) and at the end, or (`preallocate` nil) into a new sparse
  /// file with one fdatasync at the end. `direct`: O_DIRECT from an aligned buffer.
  static func rawWrite(path: String, megabytes: Int, preallocate: Int?, direct: Bool) throws -> Double {
    var flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC
    if direct { flags |= Self.directFlag }
    let fd = open(path, flags, 0o644)
    guard fd >= 0 else { throw ValidationError("cannot create \(path): errno \(errno)") }
    defer { close(fd) }
    if let preallocate { _ = posix_fallocate(fd, 0, off_t(preallocate)) }
    let block = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
    defer { block.deallocate() }
    block.initializeMemory(as: UInt8.self, repeating: 0x5A)
    let start = ContinuousClock.now
    var lastSync = start
    var offset = 0
    while offset < megabytes << 20 {
      let n = pwrite(fd, block.baseAddress, block.count, off_t(offset))
      guard n > 0 else { throw ValidationError("pwrite failed on \(path): errno \(errno)") }
      offset += n
      if preallocate != nil, ContinuousClock.now - lastSync >= .seconds(1) {
        fdatasync(fd)
        lastSync = ContinuousClock.now
      }
    }
    fdatasync(fd)
    return Double(megabytes << 20) / 1e6 / Measure.seconds(ContinuousClock.now - start)
  }

  #if arch(x86_64) || arch(i386)
    static let directFlag: Int32 = 0o40000
  #else
    static let directFlag: Int32 = 0o200000
  #endif

  /// fio's sequential write of `megabytes` MiB in 4 MiB blocks with an fsync at the end
  /// (its runtime includes that fsync); its file is laid out before the timed part, as
  /// the store's is preallocated.
  static func fioWrite(fio: String, path: String, megabytes: Int, direct: Bool) throws -> Double {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: fio)
    process.arguments = [
      "--name=raw", "--filename=\(path)", "--rw=write", "--bs=4M", "--size=\(megabytes)M", "--ioengine=psync",
      "--direct=\(direct ? 1 : 0)", "--end_fsync=1", "--output-format=json",
    ]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard let open = text.firstIndex(of: "{"), let close = text.lastIndex(of: "}"),
      let object = try JSONSerialization.jsonObject(with: Data(text[open...close].utf8)) as? [String: Any],
      let jobs = object["jobs"] as? [[String: Any]], let write = jobs.first?["write"] as? [String: Any],
      let bandwidth = (write["bw_bytes"] as? NSNumber)?.doubleValue, bandwidth > 0
    else {
      throw ValidationError("fio gave no write bandwidth (exit \(process.terminationStatus)): \(text.prefix(300))")
    }
    return bandwidth / 1e6
  }
}
