extension JSONValue: CustomStringConvertible {
    /// Compact UTF-8 JSON: no whitespace, object members in stored order.
    ///
    /// Strings escape `"`, `\` and U+0000–U+001F (as `\n`, `\t`, … or `\u00XX`);
    /// everything else, non-ASCII included, is written as raw UTF-8. Integers are
    /// written exactly; doubles use the shortest text that reads back to the
    /// same bits, always with a `.` or exponent (`1.0`, `1e-07`), so a `.double`
    /// decodes as `.double` again. Non-finite doubles (which JSON cannot express)
    /// are written as `null`, as `JSON.stringify` does.
    public func encoded() -> [UInt8] {
        var buffer: [UInt8] = []
        encode(into: &buffer)
        return buffer
    }

    /// Appends the compact encoding (see ``encoded()``) to `buffer`.
    public func encode(into buffer: inout [UInt8]) {
        switch self {
        case .null: JSONWriter.appendASCII("null", to: &buffer)
        case let .bool(value): JSONWriter.appendASCII(value ? "true" : "false", to: &buffer)
        case let .int(value): JSONWriter.append(value, to: &buffer)
        case let .double(value): JSONWriter.append(value, to: &buffer)
        case let .string(value): JSONWriter.append(value, to: &buffer)
        case let .array(elements):
            buffer.append(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { buffer.append(UInt8(ascii: ",")) }
                first = false
                element.encode(into: &buffer)
            }
            buffer.append(UInt8(ascii: "]"))
        case let .object(members):
            JSONWriter.append(members, to: &buffer)
        }
    }

    /// The compact encoding as text.
    public var jsonText: String {
        String(decoding: encoded(), as: UTF8.self)
    }

    /// The compact encoding as text (same as ``jsonText``).
    public var description: String { jsonText }

    /// Human-readable encoding: one member or element per line, indented by
    /// `indent` spaces, `"key": value`, and a trailing newline.
    public func prettyText(indent: Int = 2) -> String {
        var buffer: [UInt8] = []
        encodePretty(into: &buffer, indent: indent, level: 0)
        buffer.append(0x0A)
        return String(decoding: buffer, as: UTF8.self)
    }

    private func encodePretty(into buffer: inout [UInt8], indent: Int, level: Int) {
        func newline(_ level: Int) {
            buffer.append(0x0A)
            buffer.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * level))
        }
        switch self {
        case let .array(elements) where !elements.isEmpty:
            buffer.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { buffer.append(UInt8(ascii: ",")) }
                newline(level + 1)
                element.encodePretty(into: &buffer, indent: indent, level: level + 1)
            }
            newline(level)
            buffer.append(UInt8(ascii: "]"))
        case let .object(members) where !members.isEmpty:
            buffer.append(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { buffer.append(UInt8(ascii: ",")) }
                newline(level + 1)
                JSONWriter.append(key, to: &buffer)
                buffer.append(UInt8(ascii: ":"))
                buffer.append(UInt8(ascii: " "))
                value.encodePretty(into: &buffer, indent: indent, level: level + 1)
            }
            newline(level)
            buffer.append(UInt8(ascii: "}"))
        default:
            encode(into: &buffer)
        }
    }
}

/// Low-level pieces of the encoder, shared by `JSONValue`, `Session` and `Envelope`.
enum JSONWriter {
    static func appendASCII(_ text: StaticString, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    static func append(_ members: JSONObject, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "{"))
        var first = true
        for (key, value) in members {
            if !first { buffer.append(UInt8(ascii: ",")) }
            first = false
            append(key, to: &buffer)
            buffer.append(UInt8(ascii: ":"))
            value.encode(into: &buffer)
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// Writes an integer's decimal digits without going through `String`.
    static func append(_ value: Int64, to buffer: inout [UInt8]) {
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        if magnitude < 10 {
            buffer.append(UInt8(ascii: "0") + UInt8(magnitude))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch: Int64 has at most 19 digits
        withUnsafeMutableBytes(of: &digits) { scratch in
            var index = scratch.count
            while magnitude > 0 {
                index -= 1
                scratch[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[index...]))
        }
    }

    static func append(_ value: Double, to buffer: inout [UInt8]) {
        guard value.isFinite else {
            appendASCII("null", to: &buffer)
            return
        }
        // `description` is the shortest text that converts back to the same Double.
        buffer.append(contentsOf: value.description.utf8)
    }

    private static let hexDigits: StaticString = "0123456789abcdef"

    /// Writes a quoted, escaped string; unescaped runs are copied in bulk.
    static func append(_ string: String, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { utf8 in
            appendEscaped(utf8, to: &buffer)
        }
        if done == nil {
            let bytes = Array(string.utf8)
            bytes.withUnsafeBufferPointer { appendEscaped($0, to: &buffer) }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    private static func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>, to buffer: inout [UInt8]) {
        var runStart = 0
        for index in utf8.indices {
            let byte = utf8[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            if index > runStart {
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
            }
            runStart = index + 1
            buffer.append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): buffer.append(byte)
            case 0x0A: buffer.append(UInt8(ascii: "n"))
            case 0x0D: buffer.append(UInt8(ascii: "r"))
            case 0x09: buffer.append(UInt8(ascii: "t"))
            case 0x08: buffer.append(UInt8(ascii: "b"))
            case 0x0C: buffer.append(UInt8(ascii: "f"))
            default:
                buffer.append(UInt8(ascii: "u"))
                buffer.append(UInt8(ascii: "0"))
                buffer.append(UInt8(ascii: "0"))
                buffer.append(hexDigits.utf8Start[Int(byte >> 4)])
                buffer.append(hexDigits.utf8Start[Int(byte & 0x0F)])
            }
        }
        if utf8.count > runStart {
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
    }
}
