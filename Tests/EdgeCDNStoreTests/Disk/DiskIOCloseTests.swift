import Foundation
import TestSupport
import Testing

@testable import EdgeCDNStore

#if canImport(Glibc)
  import Glibc
#endif

/// A disk file closed while a fill still writes (the store shutting down) must refuse the
/// write, not hand it to whatever file now has the closed descriptor's number.
@Suite struct DiskIOCloseTests {
  @Test func anOperationAfterCloseFailsAndTouchesNoReusedDescriptor() throws {
    let folder = try TemporaryDirectory()
    let io = try FileDiskIO(path: folder.path + "/cache", direct: false)
    let bytes: [UInt8] = Array(repeating: 0x41, count: 4096)
    try bytes.withUnsafeBytes { try io.write($0, at: 0) }
    io.close()
    io.close()  // twice is harmless
    // The process reuses the lowest free numbers: this file likely gets the closed one.
    let other = folder.path + "/other"
    _ = FileManager.default.createFile(atPath: other, contents: Data("untouched".utf8))
    let otherFD = open(other, O_RDWR)
    defer { if otherFD >= 0 { _ = Glibc.close(otherFD) } }
    #expect(throws: CacheError.self) { try bytes.withUnsafeBytes { try io.write($0, at: 0) } }
    var buffer = [UInt8](repeating: 0, count: 16)
    #expect(throws: CacheError.self) { _ = try buffer.withUnsafeMutableBytes { try io.read(into: $0, at: 0) } }
    #expect(throws: CacheError.self) { try io.sync() }
    #expect(throws: CacheError.self) { try io.allocate(size: 1 << 20) }
    #expect(try String(contentsOfFile: other, encoding: .utf8) == "untouched")
  }
}
