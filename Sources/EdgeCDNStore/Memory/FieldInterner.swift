import Synchronization

/// Shares one storage among equal field strings of stored metas.
///
/// Why: a parsed response holds each field value over 15 bytes in a heap string of its
/// own (64 to 80 bytes), and the objects of one origin repeat most of them: the content
/// type, the cache-control, the server, a Date or Last-Modified for every object filled
/// in the same second. Kept for hours, those copies were about a fifth of a small
/// object's heap; interned, equal strings share one storage (Swift strings are
/// copy-on-write values, so sharing changes nothing for a reader).
///
/// Bounded and lossy: a direct-mapped table of `slotCount` strings, each slot holding the
/// last string hashed to it; a string met again while in its slot is shared, else it
/// takes the slot. A value unique to one object costs one slot until it is displaced.
/// The budget still charges every string whole (`HeapFootprint.string`): sharing makes
/// what is held smaller than what is charged, never larger.
final class FieldInterner: Sendable {
  private final class Stripe: Sendable {
    let slots: Mutex<[String?]>

    init(count: Int) { slots = Mutex([String?](repeating: nil, count: count)) }
  }

  private let stripes: [Stripe]
  private let slotsPerStripe: Int

  /// - Parameters:
  ///   - slotCount: strings held at most (rounded up to a multiple of `stripeCount`).
  ///   - stripeCount: locks, so that concurrent writes rarely wait for each other.
  init(slotCount: Int = 4096, stripeCount: Int = 16) {
    let stripeCount = max(1, stripeCount)
    let slotsPerStripe = max(1, (slotCount + stripeCount - 1) / stripeCount)
    self.slotsPerStripe = slotsPerStripe
    stripes = (0..<stripeCount).map { _ in Stripe(count: slotsPerStripe) }
  }

  /// The longest string held: bounds the table to about 4096 x 128 bytes.
  static let maxInternedBytes = 128

  /// `text`, or an equal string already held, sharing its storage.
  func intern(_ text: String) -> String {
    // Small strings are held inline: nothing to share. Long ones are not held: the table
    // is outside the budget, and a long value (a policy, a cookie) is seldom repeated.
    guard (16...Self.maxInternedBytes).contains(text.utf8.count) else { return text }
    let hash = UInt(bitPattern: text.hashValue)
    let stripe = Int(hash % UInt(stripes.count))
    let slot = Int((hash / UInt(stripes.count)) % UInt(slotsPerStripe))
    return stripes[stripe].slots.withLock { slots in
      if let held = slots[slot], held == text { return held }
      slots[slot] = text
      return text
    }
  }

  /// The meta with its field names and values interned, in an array no larger than its
  /// fields (a header parsed field by field leaves spare capacity behind).
  func intern(_ meta: CacheMeta) -> CacheMeta {
    var meta = meta
    var fields = [CacheMeta.Field]()
    fields.reserveCapacity(meta.response.fields.count)
    for field in meta.response.fields { fields.append(CacheMeta.Field(intern(field.name), intern(field.value))) }
    meta.response.fields = fields
    return meta
  }
}
