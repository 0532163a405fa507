/// The Cache-Control directives a shared cache acts on (RFC 9111 §5.2), parsed from
/// all field lines of a request or a response.
///
/// Unknown directives are ignored, as §5.2.3 requires; a malformed delta-seconds makes
/// the directive count as present but without a value, which the callers treat
/// conservatively (a bad max-age is treated as stale: §4.2.1).
public struct CacheControl: Hashable, Sendable {
  public var noStore = false
  /// `no-cache`: store, but revalidate before every reuse. Set by the qualified form
  /// (`no-cache="field"`) too: holding back only the named fields is what RFC 9111
  /// §5.2.2.4 asks, and treating it as unqualified is the stricter reading it notes
  /// caches commonly take.
  public var noCache = false
  /// `no-cache="field"`: the named fields (each also makes `noCache`).
  public var noCacheFields: [String] = []
  public var isPrivate = false
  public var isPublic = false
  public var maxAge: Int?
  public var sMaxAge: Int?
  public var mustRevalidate = false
  public var proxyRevalidate = false
  public var onlyIfCached = false
  /// `max-stale` without a value accepts any staleness: `Int.max`.
  public var maxStale: Int?
  public var minFresh: Int?
  public var staleWhileRevalidate: Int?
  public var staleIfError: Int?
  /// A directive with a value that is not delta-seconds was seen (max-age=abc).
  public var hasInvalidAge = false

  public init() {}

  /// Parses every field line value (`values` are the lines of Cache-Control, in order).
  public init<S: Sequence>(values: S) where S.Element == String {
    for value in values {
      for directive in Self.split(value) {
        apply(directive)
      }
    }
  }

  public var isEmpty: Bool { self == CacheControl() }

  private mutating func apply(_ raw: Substring) {
    let (name, argument) = Self.nameAndArgument(raw)
    switch name {
    case "no-store": noStore = true
    case "no-cache":
      if let argument, !argument.isEmpty {
        noCacheFields += argument.split(separator: ",").map { $0.trimmingSpaces.lowercased() }
      }
      noCache = true
    case "private": isPrivate = true
    case "public": isPublic = true
    // Repeated: the first one counts (RFC 9111 §4.2.1), not a later, longer one.
    case "max-age": if maxAge == nil { maxAge = seconds(argument) }
    case "s-maxage": if sMaxAge == nil { sMaxAge = seconds(argument) }
    case "must-revalidate": mustRevalidate = true
    case "proxy-revalidate": proxyRevalidate = true
    case "only-if-cached": onlyIfCached = true
    case "max-stale": maxStale = argument == nil ? Int.max : seconds(argument)
    case "min-fresh": minFresh = seconds(argument)
    case "stale-while-revalidate": staleWhileRevalidate = seconds(argument)
    case "stale-if-error": staleIfError = seconds(argument)
    default: break
    }
  }

  /// delta-seconds (RFC 9111 §1.2.2): digits only; values too large saturate at 2^31.
  private mutating func seconds(_ argument: String?) -> Int? {
    guard let argument, !argument.isEmpty, argument.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
      hasInvalidAge = true
      return nil
    }
    return Int(argument.prefix(10)).map { min($0, 2_147_483_648) } ?? 2_147_483_648
  }

  /// Splits on commas outside quoted strings.
  ///
  /// This and `nameAndArgument` walk the UTF-8 bytes (every delimiter is ASCII): the
  /// Character view's grapheme breaking cost more than the rest of deciding whether a
  /// response is storable, which every miss does.
  static func split(_ value: String) -> [Substring] {
    let sub = Substring(value)
    let utf8 = sub.utf8
    var parts: [Substring] = []
    var start = utf8.startIndex
    var inQuotes = false
    var index = utf8.startIndex
    while index < utf8.endIndex {
      let c = utf8[index]
      if inQuotes, c == UInt8(ascii: "\\") {
        // A quoted-pair: the next byte is literal, even a quote (RFC 9110 §5.6.4).
        index = utf8.index(after: index)
        if index == utf8.endIndex { break }
      } else if c == UInt8(ascii: "\"") {
        inQuotes.toggle()
      } else if c == UInt8(ascii: ","), !inQuotes {
        let part = sub[start..<index].trimmingASCIISpaces
        if !part.isEmpty { parts.append(part) }
        start = utf8.index(after: index)
      }
      index = utf8.index(after: index)
    }
    let last = sub[start..<utf8.endIndex].trimmingASCIISpaces
    if !last.isEmpty { parts.append(last) }
    return parts
  }

  static func nameAndArgument(_ raw: Substring) -> (String, String?) {
    guard let eq = raw.utf8.firstIndex(of: UInt8(ascii: "=")) else {
      return (raw.trimmingASCIISpaces.lowercased(), nil)
    }
    let name = raw[..<eq].trimmingASCIISpaces.lowercased()
    var argument = raw[raw.utf8.index(after: eq)...].trimmingASCIISpaces
    let quote = UInt8(ascii: "\"")
    if argument.utf8.count >= 2, argument.utf8.first == quote, argument.utf8.last == quote {
      argument =
        argument[argument.utf8.index(after: argument.startIndex)..<argument.utf8.index(before: argument.endIndex)]
    }
    return (name, String(argument))
  }
}

extension Substring {
  /// `trimmingSpaces` on the UTF-8 bytes: the same for ASCII, without grapheme breaking.
  var trimmingASCIISpaces: Substring {
    let utf8 = self.utf8
    var start = utf8.startIndex
    var end = utf8.endIndex
    while start < end, utf8[start] == 0x20 || utf8[start] == 0x09 { start = utf8.index(after: start) }
    while start < end {
      let before = utf8.index(before: end)
      guard utf8[before] == 0x20 || utf8[before] == 0x09 else { break }
      end = before
    }
    return self[start..<end]
  }
}

extension Substring {
  var trimmingSpaces: Substring {
    var s = self
    while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
    while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
    return s
  }
}
