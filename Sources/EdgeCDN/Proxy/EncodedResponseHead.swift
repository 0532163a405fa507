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
/// Kept for as long as the entry, so its bytes are in an allocation of exactly their size
/// (NIO would round a 300-byte head up to 512), and it tells the store what it holds
/// (`MemoFootprint`), which charges it to the RAM tier's budget.
///
/// The bytes are raw memory, not a ByteBuffer. Why: a hot entry's head is read by every
/// event loop at once, and copying a ByteBuffer out of it retains and releases the
/// buffer's storage, a reference count on a cache line the cores then fight over, twice
/// per hit; a raw pointer is read without touching it.
final class EncodedResponseHead: MemoFootprint, @unchecked Sendable {
  // @unchecked: `head` is written once, in init, and freed in deinit; in between it is
  // only read.

  /// The serialised head; nil when the head is not encodable.
  let head: UnsafeRawBufferPointer?
  /// What a hit needs from the entry's extensions (initial age, whether it is a Vary
  /// index), read once per stored version like the head: parsing them was about 1% of a
  /// hot hit.
  let facts: EntryExtensions.HitFacts

  init(_ response: CacheMeta.ResponseHeader, bodySize: Int, facts: EntryExtensions.HitFacts) {
    self.head = Self.encode(response, bodySize: bodySize).map { encoded in
      encoded.withUnsafeReadableBytes { source in
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: source.count, alignment: 1)
        copy.copyMemory(from: source)
        return UnsafeRawBufferPointer(copy)
      }
    }
    self.facts = facts
  }

  deinit {
    head?.deallocate()
  }

  /// A copy of the serialised head, for inspection (tests); hits read `head`.
  var bytes: ByteBuffer? { head.map { ByteBuffer(bytes: $0) } }

  /// The head and facts of the memo a store lent (`ImmediateLookup.immediateServe`), if it
  /// is one of these; told by its exact class, which costs less than a dynamic cast.
  ///
  /// Plain values out, read under a guaranteed reference: the object itself in the
  /// caller's hands was retained around the response buffer's allocation, on a reference
  /// count every event loop shares when the entry is hot. The head's pointer is valid for
  /// as long as the lender's is: within `immediateServe`'s `accept`, where it is copied.
  @inline(__always)
  static func parts(
    ofLent lent: Unmanaged<AnyObject>
  ) -> (head: UnsafeRawBufferPointer, facts: EntryExtensions.HitFacts)? {
    lent._withUnsafeGuaranteedRef { object in
      guard ObjectIdentifier(type(of: object)) == ObjectIdentifier(EncodedResponseHead.self) else { return nil }
      let kept = unsafeDowncast(object, to: EncodedResponseHead.self)
      guard let head = kept.head else { return nil }
      return (head, kept.facts)
    }
  }

  var heapFootprint: Int {
    HeapFootprint.object(
      storedBytes: MemoryLayout<UnsafeRawBufferPointer?>.stride + MemoryLayout<EntryExtensions.HitFacts>.stride)
      + (head.map { HeapFootprint.allocation($0.count) } ?? 0)
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
