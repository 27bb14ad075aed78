/// Checks UTF-8 (RFC 3629) chunk by chunk, so a sequence may be split across
/// WebSocket fragments and receive buffers (RFC 6455 §8.1: a text message
/// with invalid UTF-8 fails the connection with 1007). Rejects overlong
/// forms, surrogates (U+D800–U+DFFF) and code points above U+10FFFF at the
/// first byte that makes them so.
///
/// The viewer validates text messages itself rather than with libwebsockets'
/// `LWS_SERVER_OPTION_VALIDATE_UTF8`: lws 4.1.6's client fails such a frame by
/// returning from its parser in the middle of the frame without resetting its
/// receive buffer, and the bytes the host sends after that are written past
/// the buffer's end (a crash, found with a 1 MiB frame of invalid bytes).
struct UTF8Validator: Sendable {
    /// Continuation bytes still expected in the open sequence.
    private var needed = 0
    /// The range the next continuation byte must be in.
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    /// A validator with no sequence open.
    init() {}

    /// Takes the next bytes; false at the first byte that cannot continue valid UTF-8.
    mutating func take(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes {
            if needed > 0 {
                guard byte >= lower, byte <= upper else { return false }
                lower = 0x80
                upper = 0xBF
                needed -= 1
                continue
            }
            switch byte {
            case 0x00...0x7F: continue
            case 0xC2...0xDF: needed = 1
            case 0xE0: needed = 2; lower = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: needed = 2
            case 0xED: needed = 2; upper = 0x9F
            case 0xF0: needed = 3; lower = 0x90
            case 0xF1...0xF3: needed = 3
            case 0xF4: needed = 3; upper = 0x8F
            default: return false
            }
        }
        return true
    }

    /// True when no sequence is left open: what a complete message must end with.
    var isComplete: Bool { needed == 0 }

    /// Forgets any open sequence (a new message starts).
    mutating func reset() {
        self = UTF8Validator()
    }

    /// True when `bytes` on their own are complete, valid UTF-8.
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var validator = UTF8Validator()
        return validator.take(bytes) && validator.isComplete
    }
}
