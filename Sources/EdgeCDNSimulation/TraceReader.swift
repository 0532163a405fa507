#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Reads a request trace in the shared CSV format (`timestamp,key,size` per line, no
/// header), line by line with `getline`, into a `Workload`: the file is never held whole.
public enum TraceReader {
  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  public static func read(path: String) throws(Failure) -> Workload {
    guard let file = fopen(path, "r") else {
      let code = errno
      throw Failure(description: "cannot open trace \(path): \(String(cString: strerror(code))) (errno \(code))")
    }
    defer { fclose(file) }
    var workload = Workload()
    workload.name = path
    var objectOfKey: [UInt64: UInt32] = [:]
    var line: UnsafeMutablePointer<CChar>? = nil
    var capacity = 0
    defer { free(line) }
    var lineNumber = 0
    while true {
      let length = getline(&line, &capacity, file)
      guard length >= 0, let line else { break }
      lineNumber += 1
      let bytes = UnsafeRawBufferPointer(start: line, count: length).bindMemory(to: UInt8.self)
      guard let request = parse(bytes) else {
        if bytes.allSatisfy({ $0 == 10 || $0 == 13 || $0 == 32 }) { continue }
        throw Failure(description: "\(path):\(lineNumber): expected timestamp,key,size")
      }
      let object: UInt32
      if let known = objectOfKey[request.key] {
        object = known
      } else {
        object = UInt32(objectOfKey.count)
        objectOfKey[request.key] = object
      }
      workload.append(object: object, size: request.size)
    }
    return workload
  }

  /// Splits one line; the key is reduced to a 64-bit FNV-1a hash (collisions among a
  /// few million keys are vanishingly rare).
  private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> (key: UInt64, size: Int)? {
    guard let firstComma = bytes.firstIndex(of: 44) else { return nil }
    guard let secondComma = bytes[(firstComma + 1)...].firstIndex(of: 44) else { return nil }
    var key: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes[(firstComma + 1)..<secondComma] {
      key = (key ^ UInt64(byte)) &* 0x100_0000_01B3
    }
    var size = 0
    var digits = 0
    for byte in bytes[(secondComma + 1)...] {
      if byte >= 48 && byte <= 57 {
        size = size &* 10 &+ Int(byte - 48)
        digits += 1
      } else if byte == 10 || byte == 13 || byte == 32 {
        break
      } else {
        return nil
      }
    }
    return digits > 0 ? (key, size) : nil
  }
}
