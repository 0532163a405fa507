/// A non-negative decimal number as written in a setting ("1.5" of "1.5GiB"), kept as digits so
/// that scaling by a unit is exact: "1.5GiB" must be 1610612736 bytes, not a rounded double.
struct DecimalQuantity: Hashable, Sendable {
  enum ScaleFailure: Error, Hashable, Sendable {
    /// The scaled value does not fit in an `Int`.
    case overflow
    /// The scaled value has a fractional part ("1.5B", "0.5ns").
    case notWhole
  }

  /// The digits before the point.
  var integer: UInt64
  /// The digits after the point, without trailing zeros, as an integer ("0.250" -> 25).
  var fraction: UInt64
  /// How many digits `fraction` has after trailing zeros were dropped.
  var fractionDigits: Int

  /// Reads `digits[.digits]` from the start of `bytes`; returns the quantity and how many bytes
  /// it used, or nil when `bytes` does not start with a digit or a point lacks digits after it.
  /// An integer part too long for 64 bits saturates, so scaling reports it as an overflow.
  static func prefix(of bytes: ArraySlice<UInt8>) -> (quantity: DecimalQuantity, length: Int)? {
    var index = bytes.startIndex
    var integer: UInt64 = 0
    var sawDigit = false
    while index < bytes.endIndex, let digit = Self.digit(bytes[index]) {
      // Saturate rather than fail, so a too-long number is reported as too large, not as garbage.
      let (times10, overflow1) = integer.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(digit)
      integer = overflow1 || overflow2 ? .max : sum
      sawDigit = true
      index += 1
    }
    guard sawDigit else { return nil }
    var fractionText: [UInt64] = []
    if index < bytes.endIndex, bytes[index] == UInt8(ascii: ".") {
      index += 1
      while index < bytes.endIndex, let digit = Self.digit(bytes[index]) {
        fractionText.append(digit)
        index += 1
      }
      guard !fractionText.isEmpty else { return nil }
    }
    while fractionText.last == 0 { fractionText.removeLast() }
    // 19 digits always fit in a UInt64; more precision than that is never meaningful here.
    guard fractionText.count <= 19 else { return nil }
    let fraction = fractionText.reduce(UInt64(0)) { $0 * 10 + $1 }
    let quantity = DecimalQuantity(integer: integer, fraction: fraction, fractionDigits: fractionText.count)
    return (quantity, index - bytes.startIndex)
  }

  /// The quantity times `unit`, exactly.
  func scaled(by unit: UInt64) -> Result<Int, ScaleFailure> {
    let (whole, overflow) = integer.multipliedReportingOverflow(by: unit)
    guard !overflow else { return .failure(.overflow) }
    var fractional: UInt64 = 0
    if fractionDigits > 0 {
      var divisor: UInt64 = 1
      for _ in 0..<fractionDigits { divisor *= 10 }
      // fraction < divisor, so the quotient is below `unit` and always fits.
      let product = fraction.multipliedFullWidth(by: unit)
      let (quotient, remainder) = divisor.dividingFullWidth(product)
      guard remainder == 0 else { return .failure(.notWhole) }
      fractional = quotient
    }
    let (total, overflow2) = whole.addingReportingOverflow(fractional)
    guard !overflow2, total <= UInt64(Int.max) else { return .failure(.overflow) }
    return .success(Int(total))
  }

  private static func digit(_ byte: UInt8) -> UInt64? {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? UInt64(byte - UInt8(ascii: "0")) : nil
  }
}

extension ArraySlice<UInt8> {
  /// Drops ASCII spaces and tabs at both ends.
  func trimmingBlanks() -> ArraySlice<UInt8> {
    var slice = self
    while let first = slice.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
      slice = slice.dropFirst()
    }
    while let last = slice.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { slice = slice.dropLast() }
    return slice
  }

  /// The ASCII letters at the start (a unit such as "MiB" or "ms"), lowercased.
  func leadingLetters() -> (lowercased: String, length: Int) {
    var letters: [UInt8] = []
    for byte in self {
      if (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) {
        letters.append(byte)
      } else if (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) {
        letters.append(byte + 32)
      } else {
        break
      }
    }
    return (String(decoding: letters, as: UTF8.self), letters.count)
  }
}
