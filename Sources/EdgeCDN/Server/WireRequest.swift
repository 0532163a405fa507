import NIOCore
public import NIOHTTP1

/// A GET or HEAD request read straight from the connection's bytes, for the fast path
/// in front of NIOHTTP1's decoder (`WireResponder`).
///
/// Why: decoding a request into an `HTTPRequestHead` (llhttp's callbacks, a String per
/// name and value, an array of them) and passing its parts through the pipeline was
/// about a fifth of a cached 1 KiB hit's CPU; the fast path needs only the method, the
/// target, Host and Connection. Only plain requests qualify (see `WireRequestScan`), so
/// what is answered from the bytes is what NIOHTTP1 would have decoded.
public struct WireRequest: Sendable {
  public let isHEAD: Bool
  public let version: HTTPVersion
  /// As `HTTPRequestHead.isKeepAlive`: HTTP/1.1 unless `Connection: close`, HTTP/1.0
  /// only with `Connection: keep-alive`.
  public let isKeepAlive: Bool
  /// The request head's bytes, request line to blank line.
  let bytes: ByteBuffer
  /// Offsets in `bytes` (from its reader index).
  let target: Range<Int>
  let host: Range<Int>?

  /// `bytes` holds the scanned head, from its reader index.
  init(_ plain: WireRequestScan.Plain, bytes: ByteBuffer) {
    self.isHEAD = plain.isHEAD
    self.version = plain.version
    self.isKeepAlive = plain.isKeepAlive
    self.bytes = bytes
    self.target = plain.target
    self.host = plain.host
  }

  /// The request-target as text (for logs).
  public var uri: String {
    bytes.getString(at: bytes.readerIndex + target.lowerBound, length: target.count) ?? ""
  }

  /// The Host field's value without surrounding whitespace, if there is one.
  public var hostValue: String? {
    host.flatMap { bytes.getString(at: bytes.readerIndex + $0.lowerBound, length: $0.count) }
  }

  /// The request-target's and Host's bytes (empty when there is no Host), valid only in `body`.
  func withTargetAndHost<R>(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> R) -> R {
    bytes.withUnsafeReadableBytes { all in
      let target = UnsafeRawBufferPointer(rebasing: all[target])
      let host = host.map { UnsafeRawBufferPointer(rebasing: all[$0]) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
      return body(target, host)
    }
  }
}

/// What the fast path makes of the bytes at the start of a connection's input.
///
/// The scan accepts a strict subset of HTTP/1.1 (RFC 9112): GET or HEAD, an origin-form
/// request-target of visible ASCII, `HTTP/1.0` or `HTTP/1.1`, CRLF line ends, field
/// names that are tokens, values of visible ASCII, spaces and tabs. Whatever is not in
/// that subset, and every request that may have a body or changes the connection
/// (Content-Length, Transfer-Encoding, Upgrade, Expect), is the decoder's from there on:
/// the scan never has to agree with llhttp on anything it is unsure about.
enum WireRequestScan: Equatable {
  /// No blank line yet: more bytes are needed.
  case incomplete
  /// A plain GET or HEAD of `length` bytes, without body, that the fast path may answer.
  case plain(Plain, length: Int)
  /// A complete GET or HEAD of `length` bytes, without body, that only the decoder and
  /// the handlers behind it answer (a conditional, a Range...). It ends where its head
  /// ends, so the decoder is at a request's start again after it.
  case bodiless(length: Int)
  /// Anything else: the decoder takes the connection's input from here.
  case other

  struct Plain: Equatable {
    var isHEAD: Bool
    var version: HTTPVersion
    var isKeepAlive: Bool
    var target: Range<Int>
    var host: Range<Int>?
  }

  /// Scans the request at the start of `bytes`. A head longer than the two limits
  /// together is `other`; a plain request over either of them is `bodiless`, so that the
  /// server's limits answer it (414, 431), not the fast path.
  static func scan(
    _ bytes: UnsafeRawBufferPointer, maxRequestLineBytes: Int, maxHeaderBytes: Int
  ) -> WireRequestScan {
    var scanner = Scanner(bytes: bytes)
    let result = scanner.scan()
    let maxHeadBytes = maxRequestLineBytes + maxHeaderBytes
    switch result {
    case .incomplete: return bytes.count > maxHeadBytes ? .other : result
    case .bodiless(let length): return length > maxHeadBytes ? .other : result
    case .plain(_, let length):
      if length > maxHeadBytes { return .other }
      if scanner.requestLineBytes > maxRequestLineBytes || length - scanner.requestLineBytes > maxHeaderBytes {
        return .bodiless(length: length)
      }
      return result
    case .other: return result
    }
  }

  private struct Scanner {
    let bytes: UnsafeRawBufferPointer
    var i = 0
    /// The request line's length, CRLF included, once scanned.
    var requestLineBytes = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func scan() -> WireRequestScan {
      let n = bytes.count
      // Method: a token, then one space.
      while i < n, ASCII.isTokenByte(bytes[i]) { i += 1 }
      guard i < n else { return .incomplete }
      guard i > 0, bytes[i] == .space else { return .other }
      guard let method = Method(bytes, length: i) else { return .other }
      i += 1
      // Request-target: origin-form, visible ASCII, then one space.
      let targetStart = i
      guard i < n else { return .incomplete }
      guard bytes[i] == UInt8(ascii: "/") else { return .other }
      while i < n, bytes[i] > 0x20, bytes[i] < 0x7f { i += 1 }
      guard i < n else { return .incomplete }
      guard i > targetStart, bytes[i] == .space else { return .other }
      let target = targetStart..<i
      i += 1
      // Version and CRLF.
      let versionLine: StaticString = "HTTP/1.1\r\n"
      var minor: UInt8 = 1
      for offset in 0..<versionLine.utf8CodeUnitCount {
        guard i + offset < n else { return .incomplete }
        let byte = bytes[i + offset]
        if offset == 7, byte == UInt8(ascii: "0") {
          minor = 0
          continue
        }
        guard byte == versionLine.utf8Start[offset] else { return .other }
      }
      i += versionLine.utf8CodeUnitCount
      requestLineBytes = i
      // Fields.
      var plain = true
      var host: Range<Int>?
      var close = false
      var keepAlive = false
      while true {
        guard i + 1 < n else { return .incomplete }
        if bytes[i] == .cr {
          guard bytes[i + 1] == .lf else { return .other }
          i += 2
          break
        }
        let nameStart = i
        while i < n, ASCII.isTokenByte(bytes[i]) { i += 1 }
        guard i < n else { return .incomplete }
        guard i > nameStart, bytes[i] == .colon else { return .other }
        let name = Field(UnsafeRawBufferPointer(rebasing: bytes[nameStart..<i]))
        i += 1
        while i < n, bytes[i] == .space || bytes[i] == .tab { i += 1 }
        let valueStart = i
        while i < n, (bytes[i] >= 0x20 && bytes[i] < 0x7f) || bytes[i] == .tab { i += 1 }
        guard i + 1 < n else { return .incomplete }
        guard bytes[i] == .cr, bytes[i + 1] == .lf else { return .other }
        let valueEnd = i
        i += 2
        switch name {
        case .framing: return .other
        case .host:
          // Without trailing whitespace, as `RequestKey.host`: both paths must make one key.
          if host != nil { plain = false }
          var end = valueEnd
          while end > valueStart, bytes[end - 1] == .space || bytes[end - 1] == .tab { end -= 1 }
          host = valueStart..<end
          // A value that is not a host (a "/" in it would alias another URL's key) is
          // the path behind's to refuse.
          for index in valueStart..<end where !ASCII.isHostByte(bytes[index]) { plain = false }
        case .connection:
          var end = valueEnd
          while end > valueStart, bytes[end - 1] == .space || bytes[end - 1] == .tab { end -= 1 }
          let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<end])
          if ASCII.equals(value, "close") {
            close = true
          } else if ASCII.equals(value, "keep-alive") {
            keepAlive = true
          } else {
            plain = false
          }
        case .variant: plain = false
        case .other: break
        }
      }
      // Both tokens: llhttp's reading differs with the version; the decoder decides.
      if close, keepAlive { plain = false }
      // HTTP/1.1 without Host is the path behind's to refuse (RFC 9112 §3.2).
      if minor == 1, host == nil { plain = false }
      guard plain else { return .bodiless(length: i) }
      let request = Plain(
        isHEAD: method == .head, version: HTTPVersion(major: 1, minor: Int(minor)),
        isKeepAlive: minor == 1 ? !close : keepAlive && !close, target: target, host: host)
      return .plain(request, length: i)
    }

    /// GET and HEAD: another method, even without a body, is the decoder's (llhttp knows
    /// a fixed list of methods, and refuses others).
    private enum Method {
      case get, head

      init?(_ bytes: UnsafeRawBufferPointer, length: Int) {
        switch length {
        case 3 where bytes[0] == UInt8(ascii: "G") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "T"):
          self = .get
        case 4
        where bytes[0] == UInt8(ascii: "H") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "A")
          && bytes[3] == UInt8(ascii: "D"):
          self = .head
        default: return nil
        }
      }
    }

    /// Field names that matter here, matched ignoring case.
    private enum Field {
      /// The request may have a body or leave HTTP/1.1 (Content-Length,
      /// Transfer-Encoding, Upgrade, Expect).
      case framing
      case host, connection
      /// The answer depends on more than the stored entry: the fields `RequestField`
      /// sends to the full path (conditionals, Range, Cache-Control, Pragma, Authorization).
      case variant
      case other

      init(_ name: UnsafeRawBufferPointer) {
        switch name.count {
        case 4: self = ASCII.equals(name, "host") ? .host : .other
        case 5: self = ASCII.equals(name, "range") ? .variant : .other
        case 6: self = ASCII.equals(name, "expect") ? .framing : ASCII.equals(name, "pragma") ? .variant : .other
        case 7: self = ASCII.equals(name, "upgrade") ? .framing : .other
        case 10: self = ASCII.equals(name, "connection") ? .connection : .other
        case 13:
          self =
            ASCII.equals(name, "cache-control") || ASCII.equals(name, "authorization") ? .variant : .other
        case 14: self = ASCII.equals(name, "content-length") ? .framing : .other
        // llhttp reads it as Connection; the decoder decides.
        case 16: self = ASCII.equals(name, "proxy-connection") ? .variant : .other
        case 17: self = ASCII.equals(name, "transfer-encoding") ? .framing : .other
        default: self = .other
        }
        if self == .other, name.count > 3, ASCII.hasPrefix(name, "if-") { self = .variant }
      }
    }
  }
}

extension UInt8 {
  fileprivate static let space = UInt8(ascii: " ")
  fileprivate static let tab = UInt8(ascii: "\t")
  fileprivate static let cr = UInt8(ascii: "\r")
  fileprivate static let lf = UInt8(ascii: "\n")
  fileprivate static let colon = UInt8(ascii: ":")
}
