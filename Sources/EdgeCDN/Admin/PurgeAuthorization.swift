import NIOHTTP1

/// Checks `Authorization: Bearer <token>` in constant time, so the comparison does not
/// leak how much of a guess was right.
enum PurgeAuthorization {
  static func isAuthorized(_ headers: HTTPHeaders, token: String?) -> Bool {
    guard let token, let value = headers.first(name: "authorization") else { return false }
    let prefix = "bearer "
    guard value.count > prefix.count, value.lowercased().hasPrefix(prefix) else { return false }
    let given = Array(value.utf8.dropFirst(prefix.utf8.count))
    let expected = Array(token.utf8)
    var difference = UInt8(given.count == expected.count ? 0 : 1)
    for index in 0..<expected.count { difference |= expected[index] ^ (index < given.count ? given[index] : 0) }
    return difference == 0
  }
}
