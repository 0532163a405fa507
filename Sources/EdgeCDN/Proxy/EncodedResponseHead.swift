import EdgeCDNStore
import NIOCore
import NIOHTTP1

/// A stored response's status line and header fields, serialised and checked once per
/// stored version of the object (kept in the entry's `EntryMemo`), so a fresh hit copies
/// them instead of rebuilding HTTPHeaders and running NIOHTTP1's validator and encoder.
///
/// The bytes are what NIOHTTP1 writes for the same head: `HTTP/1.1 <code> <phrase>` and
/// each stored field as `name: value`, in order, the stored Age left out (a hit sends
/// its own). A hit adds Age, Cache-Status, Connection and the blank line.
///
/// Only heads that NIOHTTP1 would send unchanged are encoded: a status that may have a
/// body, at most one Content-Length, equal to the stored body's size, no Connection or
/// Transfer-Encoding field, every field valid to send. A head without Content-Length
/// (its origin sent the body chunked, or until close) gets one: the stored body is
/// complete, so its length is known, and a hit need not be chunked (nginx's cached
/// responses do the same). Any other head is memoised as not encodable, and its hits
/// take the HTTPHeaders path.
///
/// Kept for as long as the entry, so its bytes are in storage of exactly their size (NIO
/// would round a 300-byte head up to 512), and it tells the store what it holds
/// (`MemoFootprint`), which charges it to the RAM tier's budget.
final class EncodedResponseHead: MemoFootprint {
  /// Nil when the head is not encodable.
  let bytes: ByteBuffer?
  /// What a hit needs from the entry's extensions (initial age, whether it is a Vary
  /// index), read once per stored version like the head: parsing them was about 1% of a
  /// hot hit.
  let facts: EntryExtensions.HitFacts

  init(_ response: CacheMeta.ResponseHeader, bodySize: Int, facts: EntryExtensions.HitFacts) {
    self.bytes = Self.encode(response, bodySize: bodySize).map(ExactBuffer.copy)
    self.facts = facts
  }

  /// The memo a store lent (`ImmediateLookup.immediateServe`), if it is one of these;
  /// told by its exact class, which costs less than a dynamic cast.
  @inline(__always)
  static func lent(_ object: AnyObject) -> EncodedResponseHead? {
    guard ObjectIdentifier(type(of: object)) == ObjectIdentifier(EncodedResponseHead.self) else { return nil }
    return unsafeDowncast(object, to: EncodedResponseHead.self)
  }

  var heapFootprint: Int {
    HeapFootprint.object(
      storedBytes: MemoryLayout<ByteBuffer?>.stride + MemoryLayout<EntryExtensions.HitFacts>.stride)
      + (bytes.map(HeapFootprint.byteBuffer) ?? 0)
  }

  private static func encode(_ response: CacheMeta.ResponseHeader, bodySize: Int) -> ByteBuffer? {
    let status = HTTPResponseStatus(statusCode: Int(response.status))
    guard status.mayHaveResponseBody, case let phrase = status.reasonPhrase, isValidValue(phrase) else {
      return nil
    }
    var contentLengths = 0
    var size = 32 + phrase.utf8.count
    for field in response.fields {
      guard isValidName(field.name), isValidValue(field.value) else { return nil }
      switch ResponseField.classify(field.name) {
      case .age: continue
      case .connection, .transferEncoding: return nil
      case .contentLength:
        guard Int(field.value) == bodySize else { return nil }
        contentLengths += 1
      case .other: break
      }
      size += field.name.utf8.count + field.value.utf8.count + 4
    }
    guard contentLengths <= 1 else { return nil }
    let addedLength = contentLengths == 0 ? String(bodySize) : nil
    if let addedLength { size += 18 + addedLength.utf8.count }
    var buffer = ByteBufferAllocator().buffer(capacity: size)
    buffer.writeStaticString("HTTP/1.1 ")
    buffer.writeString(String(status.code))
    buffer.writeStaticString(" ")
    buffer.writeString(phrase)
    buffer.writeStaticString("\r\n")
    for field in response.fields where ResponseField.classify(field.name) != .age {
      buffer.writeString(field.name)
      buffer.writeStaticString(": ")
      buffer.writeString(field.value)
      buffer.writeStaticString("\r\n")
    }
    if let addedLength {
      buffer.writeStaticString("Content-Length: ")
      buffer.writeString(addedLength)
      buffer.writeStaticString("\r\n")
    }
    return buffer
  }

  /// RFC 9110 token: what NIOHTTP1's response validator accepts as a field name.
  static func isValidName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.allSatisfy(ASCII.isTokenByte)
  }

  /// No control character but HTAB: what NIOHTTP1's response validator accepts as a value.
  static func isValidValue(_ value: String) -> Bool {
    value.utf8.allSatisfy { $0 == 0x09 || ($0 > 0x1f && $0 != 0x7f) }
  }
}
