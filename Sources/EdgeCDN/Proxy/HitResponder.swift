import EdgeCDNStore
import NIOCore
import NIOHTTP1

/// Writes a cached response: 304 to a matching conditional, 206/416 for ranges (read
/// with the hit handler's seek), else the whole body, chunk by chunk as the store gives it.
enum HitResponder {
  static func respond<Handler: HitHandler>(
    handler: inout Handler, status: UInt16, headers: HTTPHeaders, bodySize: Int?, request: HTTPRequestHead,
    writer: inout ResponseWriter
  ) async throws {
    let responseStatus = HTTPResponseStatus(statusCode: Int(status))
    if (200..<300).contains(status), Conditional.isNotModified(request: request.headers, stored: headers) {
      var notModified = HTTPHeaders()
      for (name, value) in headers
      where Conditional.notModifiedFields.contains(name.lowercased()) || name.lowercased() == "age"
        || name.lowercased() == "cache-status"
      {
        notModified.add(name: name, value: value)
      }
      writer.writeHead(status: .notModified, headers: notModified)
      try await writer.end()
      return
    }
    var headers = headers
    if status == 200, request.method == .GET, let size = bodySize, handler.canSeek,
      let rangeHeader = request.headers.first(name: "range"), ifRangeAllows(request.headers, stored: headers)
    {
      switch RangeRequest.resolve(rangeHeader, size: size) {
      case .full: break
      case .unsatisfiable:
        headers.replaceOrAdd(name: "Content-Range", value: "bytes */\(size)")
        headers.replaceOrAdd(name: "Content-Length", value: "0")
        writer.writeHead(status: .rangeNotSatisfiable, headers: headers)
        try await writer.end()
        return
      case .single(let range):
        try await handler.seek(start: range.lowerBound, end: range.upperBound + 1)
        headers.replaceOrAdd(name: "Content-Range", value: "bytes \(range.lowerBound)-\(range.upperBound)/\(size)")
        headers.replaceOrAdd(name: "Content-Length", value: "\(range.count)")
        writer.writeHead(status: .partialContent, headers: headers)
        try await copyBody(&handler, writer: &writer)
        try await writer.end()
        return
      case .multiple(let ranges) where handler.canSeekMultipart:
        try await multipart(&handler, ranges: ranges, size: size, headers: headers, writer: &writer)
        return
      case .multiple: break
      }
    }
    writer.writeHead(status: responseStatus, headers: headers)
    if request.method != .HEAD { try await copyBody(&handler, writer: &writer) }
    try await writer.end()
  }

  /// If-Range (RFC 9110 §13.1.5): ranges only when the validator still matches (strong ETag or date).
  static func ifRangeAllows(_ request: HTTPHeaders, stored: HTTPHeaders) -> Bool {
    guard let ifRange = request.first(name: "if-range") else { return true }
    if ifRange.hasPrefix("\"") { return stored.first(name: "etag") == ifRange }
    guard let date = HTTPDate.parse(ifRange), let lastModified = stored.first(name: "last-modified") else {
      return false
    }
    return HTTPDate.parse(lastModified) == date
  }

  private static func copyBody<Handler: HitHandler>(
    _ handler: inout Handler, writer: inout ResponseWriter
  )
    async throws
  {
    if let file = handler.takeFileBody() {
      try await writer.writeFile(file)
      return
    }
    while let chunk = try await handler.readBody() { try await writer.writeBody(chunk) }
  }

  /// multipart/byteranges (RFC 9110 §14.6), with an exact Content-Length computed up front.
  private static func multipart<Handler: HitHandler>(
    _ handler: inout Handler, ranges: [ClosedRange<Int>], size: Int, headers: HTTPHeaders,
    writer: inout ResponseWriter
  ) async throws {
    let boundary = "edgecdn" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    let contentType = headers.first(name: "content-type")
    let partHeads = ranges.map { range -> String in
      var s = "\r\n--\(boundary)\r\n"
      if let contentType { s += "Content-Type: \(contentType)\r\n" }
      s += "Content-Range: bytes \(range.lowerBound)-\(range.upperBound)/\(size)\r\n\r\n"
      return s
    }
    let closing = "\r\n--\(boundary)--\r\n"
    let length = partHeads.reduce(0) { $0 + $1.utf8.count } + ranges.reduce(0) { $0 + $1.count } + closing.utf8.count
    var headers = headers
    headers.replaceOrAdd(name: "Content-Type", value: "multipart/byteranges; boundary=\(boundary)")
    headers.replaceOrAdd(name: "Content-Length", value: "\(length)")
    writer.writeHead(status: .partialContent, headers: headers)
    for (index, range) in ranges.enumerated() {
      try await writer.writeBody(ByteBuffer(string: partHeads[index]))
      if index == 0 {
        try await handler.seek(start: range.lowerBound, end: range.upperBound + 1)
      } else {
        try await handler.seekMultipart(start: range.lowerBound, end: range.upperBound + 1)
      }
      try await copyBody(&handler, writer: &writer)
    }
    try await writer.writeBody(ByteBuffer(string: closing))
    try await writer.end()
  }
}
