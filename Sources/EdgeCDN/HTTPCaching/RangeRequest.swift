/// A Range request (RFC 9110 §14.2) resolved against a body of known size.
public enum RangeRequest: Hashable, Sendable {
  /// No usable Range: send the whole body with 200 (an invalid Range is ignored, §14.2).
  case full
  /// One satisfiable range: 206 with Content-Range.
  case single(ClosedRange<Int>)
  /// Several: 206 multipart/byteranges, in request order (overlaps are not coalesced).
  case multiple([ClosedRange<Int>])
  /// Syntactically valid but none overlaps the body: 416 with `Content-Range: bytes */size`.
  case unsatisfiable

  /// The most ranges one request may ask for; more is treated as an abuse and ignored
  /// (a full 200), as §14.2 allows.
  public static let maxRanges = 32

  public static func resolve(_ header: String?, size: Int) -> RangeRequest {
    guard let header else { return .full }
    let trimmed = Substring(header).trimmingSpaces
    guard trimmed.lowercased().hasPrefix("bytes=") else { return .full }
    let specs = trimmed.dropFirst(6).split(separator: ",", omittingEmptySubsequences: false)
    guard specs.count <= maxRanges else { return .full }
    var ranges: [ClosedRange<Int>] = []
    for spec in specs {
      let s = spec.trimmingSpaces
      guard let dash = s.firstIndex(of: "-") else { return .full }
      let first = s[..<dash]
      let last = s[s.index(after: dash)...]
      if first.isEmpty {
        // suffix-range: the last N bytes
        guard let n = Int(last), n >= 0 else { return .full }
        if n == 0 || size == 0 { continue }
        ranges.append(max(0, size - n)...(size - 1))
      } else {
        guard let start = Int(first), start >= 0 else { return .full }
        var end = size - 1
        if !last.isEmpty {
          guard let e = Int(last), e >= start else { return .full }
          end = min(e, size - 1)
        }
        if start >= size { continue }
        ranges.append(start...end)
      }
    }
    switch ranges.count {
    case 0: return .unsatisfiable
    case 1: return .single(ranges[0])
    default: return .multiple(ranges)
    }
  }
}
