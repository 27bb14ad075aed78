/// Where a viewer's connection to its host stands (SPEC §4).
///
/// disconnected → connecting → connected; after an unintended close:
/// reconnecting → connecting → connected. An intentional disconnect goes
/// through `closing` (close 1000 sent) to `disconnected` and never
/// reconnects. A host that refuses the handshake with HTTP 401 or 403 puts
/// the viewer in `notAuthorized`, where it stays: retrying with the same
/// token cannot succeed, so the viewer stops and reports it.
public enum ConnectionState: Sendable, Hashable, CustomStringConvertible {
    /// Not connected and not trying to be (initial, or after `disconnect()`).
    case disconnected
    /// A connection attempt is under way.
    case connecting
    /// The WebSocket is open; state arrives from the host.
    case connected
    /// The connection was lost; attempt number `attempt` (1-based) starts after `delay`.
    case reconnecting(attempt: Int, delay: Duration)
    /// `disconnect()` was called: close 1000 is on its way; the host's reply is awaited.
    case closing
    /// The host refused the handshake with this HTTP status (401 or 403). Terminal: no retry.
    case notAuthorized(httpStatus: Int)

    /// A short human-readable form, e.g. "reconnecting (attempt 2, in 3.0 s)".
    public var description: String {
        switch self {
        case .disconnected: "disconnected"
        case .connecting: "connecting"
        case .connected: "connected"
        case let .reconnecting(attempt, delay):
            "reconnecting (attempt \(attempt), in \(formatSeconds(delay)) s)"
        case .closing: "closing"
        case let .notAuthorized(status): "not authorized (HTTP \(status))"
        }
    }

    /// `true` for states in which the viewer will not connect again by itself.
    public var isFinal: Bool {
        switch self {
        case .disconnected, .notAuthorized: true
        default: false
        }
    }
}

/// "3.0", "10.1": one decimal, no Foundation.
func formatSeconds(_ duration: Duration) -> String {
    let tenths = Int((duration.seconds * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}
