/// One complete WebSocket message from the host, as the transport hands it over.
public enum IncomingFrame: Sendable, Hashable {
    /// A text message: the bytes of one envelope (SPEC §2).
    case text([UInt8])
    /// A binary message; StateCast never sends one, so only its size is kept.
    case binary(byteCount: Int)
    /// A message larger than the configured maximum, discarded while it arrived.
    case oversized(byteCount: Int)
}
