/// Hides credentials in text the viewer prints or logs (issue 13, item 12):
/// the value of every query parameter whose name ends in `token`
/// (`token=…`, `access_token=…`) and whatever follows `Bearer `.
///
/// ```swift
/// TokenRedaction.redact("ws://h:1/live?token=s3cret&x=1")   // "ws://h:1/live?token=REDACTED&x=1"
/// ```
enum TokenRedaction {
    /// What a hidden value is replaced with.
    static let placeholder = "REDACTED"

    /// `text` with every token value replaced by ``placeholder``.
    static func redact(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if let valueStart = tokenValueStart(in: bytes, at: index) {
                result.append(contentsOf: bytes[index..<valueStart])
                result.append(contentsOf: placeholder.utf8)
                index = valueStart
                while index < bytes.count, !ends(bytes[index]) { index += 1 }
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The index where a secret value starts if one starts right after `index`
    /// (`…token=` ending at a parameter name boundary, or `Bearer `).
    private static func tokenValueStart(in bytes: [UInt8], at index: Int) -> Int? {
        if matches(bytes, at: index, "bearer ") {
            return index + 7
        }
        guard matches(bytes, at: index, "token=") else { return nil }
        return index + 6
    }

    /// Case-insensitive ASCII comparison of `bytes[index...]` with `word`.
    private static func matches(_ bytes: [UInt8], at index: Int, _ word: String) -> Bool {
        let word = Array(word.utf8)
        guard index + word.count <= bytes.count else { return false }
        for (offset, expected) in word.enumerated() {
            var byte = bytes[index + offset]
            if (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) { byte += 32 }
            guard byte == expected else { return false }
        }
        return true
    }

    /// Bytes that end a query value or a header value.
    private static func ends(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "&") || byte == UInt8(ascii: "#") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\"")
            || byte == UInt8(ascii: "'") || byte == UInt8(ascii: ";") || byte < 0x20 || byte == 0x7F
    }
}
