import Envelope

/// Bytes of a string, for feeding the decoders.
func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Parses the UTF-8 of `text` through the byte-level entry point.
func parse(_ text: String) throws(JSONError) -> JSONValue {
    try JSONValue(parsing: utf8(text))
}

/// The JSON error thrown by parsing `bytes`, or nil if it parsed.
func jsonError(_ bytes: [UInt8]) -> JSONError? {
    do {
        _ = try JSONValue(parsing: bytes)
        return nil
    } catch {
        return error
    }
}

/// The envelope error thrown by decoding `bytes`, or nil if it decoded.
func envelopeError(_ bytes: [UInt8]) -> EnvelopeError? {
    do {
        _ = try Envelope(decoding: bytes)
        return nil
    } catch {
        return error
    }
}

extension Double {
    /// Bit-exact equality (distinguishes -0.0 from 0.0).
    func isBitwiseEqual(_ other: Double) -> Bool { bitPattern == other.bitPattern }
}
