/// What a connection's handlers share about its exchanges, so that `WireResponder`,
/// in front of the decoder, answers only when doing so cannot reorder responses.
///
/// Why a shared object and not an event: it is read once per request and written by
/// handlers on the same event loop, never across threads; a field read costs nothing,
/// where a pipeline event costs a hop through every handler.
final class OpenExchanges {
  /// Requests that reached `ResponseEncoder` (on their way to the pipelining handler) and
  /// whose response has not ended yet.
  var open = 0
  /// A response said, or will say, Connection: close: nothing may follow it.
  var closing = false
  /// The decoder failed on the input (`ProtocolErrorHandler` answered 400 and closes).
  var failed = false

  init() {}

  /// Whether a request arriving now may be answered ahead of the pipelining handler.
  var isIdle: Bool { open == 0 && !closing && !failed }
}
