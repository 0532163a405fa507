/// Why an origin fetch failed; each maps to the status the client gets.
public enum OriginError: Error, Hashable, Sendable, CustomStringConvertible {
  case connectFailed(origin: String, reason: String)
  /// No response head within the configured origin response timeout.
  case timeout(origin: String, seconds: Int64)
  /// The connection closed or failed before or during the response.
  case connectionFailed(origin: String, reason: String)
  case protocolError(origin: String, reason: String)

  /// 504 for a timeout, 502 for everything else (RFC 9110 §15.6.3, §15.6.5).
  public var responseStatus: UInt {
    if case .timeout = self { return 504 }
    return 502
  }

  public var description: String {
    switch self {
    case .connectFailed(let origin, let reason): "cannot connect to origin \(origin): \(reason)"
    case .timeout(let origin, let seconds): "origin \(origin) sent no response within \(seconds) s"
    case .connectionFailed(let origin, let reason): "origin \(origin) connection failed: \(reason)"
    case .protocolError(let origin, let reason): "origin \(origin) sent an invalid response: \(reason)"
    }
  }
}
