/// The JSON decoder behind `JSONValue(parsing:)`: a single pass over raw
/// UTF-8 bytes, iterative (an explicit stack of open containers, so deep
/// input cannot overflow the thread's stack), with no per-character work on
/// `String`s. See `JSONValue` for the decisions it implements.
///
/// The buffer must stay valid for the parser's lifetime; it is only used
/// inside `JSONValue.init(parsing:)`.
struct JSONParser {
    private let base: UnsafePointer<UInt8>
    private let end: Int
    private let maximumDepth: Int
    private var position = 0

    /// One array or object that is still open.
    private struct Frame {
        var isObject: Bool
        var array: [JSONValue] = []
        var object: JSONObject = [:]
        var key: String = ""
    }

    init(_ buffer: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
        // An empty buffer may have no base address; point at a dummy byte we never read.
        self.base = buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!
        self.end = buffer.baseAddress == nil ? 0 : buffer.count
        self.maximumDepth = maximumDepth
    }

    // MARK: - Document

    mutating func parseDocument() throws(JSONError) -> JSONValue {
        if end >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF {
            position = 3
        }
        skipWhitespace()
        guard position < end else { throw error(.emptyInput, at: position) }
        let value = try parseValue()
        skipWhitespace()
        guard position == end else { throw error(.trailingGarbage, at: position) }
        return value
    }

    // MARK: - Values

    private mutating func parseValue() throws(JSONError) -> JSONValue {
        var stack: [Frame] = []
        while true {
            // Here a value is expected at `position`.
            skipWhitespace()
            guard position < end else {
                throw error(.unexpectedEnd, at: position, expected: "a JSON value")
            }
            var value: JSONValue
            switch base[position] {
            case UInt8(ascii: "{"):
                guard stack.count < maximumDepth else { throw error(.tooDeep(limit: maximumDepth), at: position) }
                position += 1
                skipWhitespace()
                if position < end, base[position] == UInt8(ascii: "}") {
                    position += 1
                    value = .object([:])
                } else {
                    let key = try parseKey(expected: "a string key or '}'")
                    stack.append(Frame(isObject: true, key: key))
                    continue
                }
            case UInt8(ascii: "["):
                guard stack.count < maximumDepth else { throw error(.tooDeep(limit: maximumDepth), at: position) }
                position += 1
                skipWhitespace()
                if position < end, base[position] == UInt8(ascii: "]") {
                    position += 1
                    value = .array([])
                } else {
                    stack.append(Frame(isObject: false))
                    continue
                }
            case UInt8(ascii: "\""):
                value = .string(try parseString())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "."):
                value = try parseNumber()
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                value = .bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                value = .bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                value = .null
            case UInt8(ascii: "N"), UInt8(ascii: "I"):
                if matches("NaN") || matches("Infinity") { throw error(.nonFiniteNumber, at: position) }
                throw unexpected(expected: "a JSON value")
            default:
                throw unexpected(expected: "a JSON value")
            }

            // Attach the finished value to the open containers, closing as many as end here.
            while true {
                guard !stack.isEmpty else { return value }
                let top = stack.count - 1
                skipWhitespace()
                if stack[top].isObject {
                    let key = stack[top].key
                    stack[top].object[key] = value  // duplicate keys: the last value wins, first position kept
                    guard position < end else {
                        throw error(.unexpectedEnd, at: position, expected: "',' or '}' after an object member")
                    }
                    let byte = base[position]
                    if byte == UInt8(ascii: ",") {
                        position += 1
                        skipWhitespace()
                        stack[top].key = try parseKey(expected: "a string key after ','")
                        break
                    } else if byte == UInt8(ascii: "}") {
                        position += 1
                        value = .object(stack.removeLast().object)
                    } else {
                        throw unexpected(expected: "',' or '}' after an object member")
                    }
                } else {
                    stack[top].array.append(value)
                    guard position < end else {
                        throw error(.unexpectedEnd, at: position, expected: "',' or ']' after an array element")
                    }
                    let byte = base[position]
                    if byte == UInt8(ascii: ",") {
                        position += 1
                        break
                    } else if byte == UInt8(ascii: "]") {
                        position += 1
                        value = .array(stack.removeLast().array)
                    } else {
                        throw unexpected(expected: "',' or ']' after an array element")
                    }
                }
            }
        }
    }

    /// Parses `"key"` and the `:` after it; on return `position` is at the member's value.
    private mutating func parseKey(expected: String) throws(JSONError) -> String {
        guard position < end else { throw error(.unexpectedEnd, at: position, expected: expected) }
        guard base[position] == UInt8(ascii: "\"") else { throw unexpected(expected: expected) }
        let key = try parseString()
        skipWhitespace()
        guard position < end else {
            throw error(.unexpectedEnd, at: position, expected: "':' after an object key")
        }
        guard base[position] == UInt8(ascii: ":") else { throw unexpected(expected: "':' after an object key") }
        position += 1
        return key
    }

    private func matches(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard end - position >= count else { return false }
        let text = word.utf8Start
        for index in 0..<count where base[position + index] != text[index] { return false }
        return true
    }

    private mutating func expectLiteral(_ word: StaticString) throws(JSONError) {
        let text = word.utf8Start
        for index in 0..<word.utf8CodeUnitCount {
            guard position < end else {
                throw error(.unexpectedEnd, at: position, expected: "the literal \(word)")
            }
            guard base[position] == text[index] else { throw unexpected(expected: "the literal \(word)") }
            position += 1
        }
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while position < end {
            switch base[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    // MARK: - Numbers

    private static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    private mutating func parseNumber() throws(JSONError) -> JSONValue {
        let start = position
        let negative = base[position] == UInt8(ascii: "-")
        if negative {
            position += 1
            if matches("Infinity") { throw error(.nonFiniteNumber, at: start) }
        }
        guard position < end else { throw error(.invalidNumber, at: start) }

        // Integer part. `significand` holds up to 19 significant digits exactly.
        var significand: UInt64 = 0
        var digitCount = 0          // significant digits consumed into or dropped from `significand`
        var droppedDigits = 0       // integer digits beyond the 19th (scale the value up)
        let first = base[position]
        if first == UInt8(ascii: "0") {
            position += 1
            if position < end, isDigit(base[position]) { throw error(.invalidNumber, at: start) }
        } else if isDigit(first) {
            while position < end, isDigit(base[position]) {
                if digitCount < 19 {
                    significand = significand &* 10 &+ UInt64(base[position] &- 0x30)
                } else {
                    droppedDigits += 1
                }
                digitCount += 1
                position += 1
            }
        } else {
            throw error(.invalidNumber, at: start)
        }

        var isInteger = true
        var fractionDigits = 0      // fraction digits folded into `significand`
        var inexact = droppedDigits > 0
        if position < end, base[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard position < end, isDigit(base[position]) else { throw error(.invalidNumber, at: start) }
            while position < end, isDigit(base[position]) {
                let digit = base[position] &- 0x30
                if significand == 0, digit == 0 {
                    fractionDigits += 1  // leading zeros of 0.000123 are not significant
                } else if digitCount < 19 {
                    significand = significand &* 10 &+ UInt64(digit)
                    digitCount += 1
                    fractionDigits += 1
                } else if digit != 0 {
                    inexact = true
                }
                position += 1
            }
        }
        var exponent = 0
        if position < end, base[position] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            position += 1
            var exponentNegative = false
            if position < end, base[position] == UInt8(ascii: "-") || base[position] == UInt8(ascii: "+") {
                exponentNegative = base[position] == UInt8(ascii: "-")
                position += 1
            }
            guard position < end, isDigit(base[position]) else { throw error(.invalidNumber, at: start) }
            while position < end, isDigit(base[position]) {
                if exponent < 100_000 { exponent = exponent * 10 + Int(base[position] &- 0x30) }
                position += 1
            }
            if exponentNegative { exponent = -exponent }
        }

        if isInteger, droppedDigits == 0 {
            if negative {
                if significand <= UInt64(Int64.max) + 1 {
                    if significand == 0 { return .double(-0.0) }  // "-0" keeps its sign
                    return .int(Int64(truncatingIfNeeded: 0 &- significand))
                }
            } else if significand <= UInt64(Int64.max) {
                return .int(Int64(significand))
            }
        }

        // Clinger's fast path: both the significand and the power of ten are exact doubles,
        // so one multiplication or division rounds correctly.
        let scale = exponent + droppedDigits - fractionDigits
        if !inexact, significand < (1 << 53), scale >= -22, scale <= 22 {
            var magnitude = Double(significand)
            if scale >= 0 {
                magnitude *= Self.exactPowersOfTen[scale]
            } else {
                magnitude /= Self.exactPowersOfTen[-scale]
            }
            return .double(negative ? -magnitude : magnitude)
        }

        // Everything else goes through the standard library's correctly rounded conversion.
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: position - start), as: UTF8.self)
        guard let parsed = Double(text) else { throw error(.invalidNumber, at: start) }
        guard parsed.isFinite else { throw error(.numberOutOfRange, at: start) }
        return .double(parsed)
    }

    @inline(__always)
    private func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    // MARK: - Strings

    /// Parses a string starting at its opening quote; on return `position` is past the closing quote.
    private mutating func parseString() throws(JSONError) -> String {
        let quote = position
        position += 1
        let contentStart = position
        var sawNonASCII = false
        // Fast scan: most strings have no escapes.
        while position < end {
            let byte = base[position]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            if byte >= 0x80 { sawNonASCII = true }
            position += 1
        }
        guard position < end else { throw error(.unterminatedString, at: quote) }
        let byte = base[position]
        if byte == UInt8(ascii: "\"") {
            let content = UnsafeBufferPointer(start: base + contentStart, count: position - contentStart)
            position += 1
            if !sawNonASCII {
                return String(decoding: content, as: UTF8.self)
            }
            guard let string = String(validating: content, as: UTF8.self) else {
                throw invalidUTF8(in: contentStart..<(position - 1))
            }
            return string
        }
        if byte < 0x20 { throw controlCharacter(at: position) }
        return try parseEscapedString(quote: quote, contentStart: contentStart, sawNonASCII: sawNonASCII)
    }

    /// The slow path, entered at the first backslash: decodes into a byte buffer, copying
    /// unescaped runs in bulk, and builds the `String` once at the end.
    private mutating func parseEscapedString(quote: Int, contentStart: Int, sawNonASCII: Bool) throws(JSONError) -> String {
        var sawNonASCII = sawNonASCII
        var bytes: [UInt8] = []
        bytes.reserveCapacity(position - contentStart + 16)
        var runStart = contentStart
        while true {
            while position < end {
                let byte = base[position]
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
                if byte >= 0x80 { sawNonASCII = true }
                position += 1
            }
            guard position < end else { throw error(.unterminatedString, at: quote) }
            if position > runStart {
                bytes.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: position - runStart))
            }
            let byte = base[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                break
            }
            if byte < 0x20 { throw controlCharacter(at: position) }
            try decodeEscape(into: &bytes, quote: quote)
            runStart = position
        }
        if !sawNonASCII {
            return String(decoding: bytes, as: UTF8.self)
        }
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw invalidUTF8(in: contentStart..<(position - 1))
        }
        return string
    }

    /// Decodes the escape at `position` (a backslash) and appends its UTF-8.
    private mutating func decodeEscape(into bytes: inout [UInt8], quote: Int) throws(JSONError) {
        let escapeStart = position
        position += 1
        guard position < end else { throw error(.unterminatedString, at: quote) }
        let letter = base[position]
        position += 1
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(letter)
        case UInt8(ascii: "b"): bytes.append(0x08)
        case UInt8(ascii: "f"): bytes.append(0x0C)
        case UInt8(ascii: "n"): bytes.append(0x0A)
        case UInt8(ascii: "r"): bytes.append(0x0D)
        case UInt8(ascii: "t"): bytes.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try hexQuad(escapeStart: escapeStart, quote: quote)
            var scalarValue = UInt32(unit)
            if unit >= 0xD800, unit <= 0xDBFF {
                // A high surrogate must be followed by an escaped low surrogate.
                guard end - position >= 2, base[position] == UInt8(ascii: "\\"), base[position + 1] == UInt8(ascii: "u") else {
                    throw error(.loneSurrogate, at: escapeStart)
                }
                let lowStart = position
                position += 2
                let low = try hexQuad(escapeStart: lowStart, quote: quote)
                guard low >= 0xDC00, low <= 0xDFFF else { throw error(.loneSurrogate, at: escapeStart) }
                scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            } else if unit >= 0xDC00, unit <= 0xDFFF {
                throw error(.loneSurrogate, at: escapeStart)
            }
            appendUTF8(scalarValue, to: &bytes)
        default:
            throw error(.invalidEscape, at: escapeStart)
        }
    }

    /// Reads the four hex digits after `\u`.
    private mutating func hexQuad(escapeStart: Int, quote: Int) throws(JSONError) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard position < end else { throw error(.unterminatedString, at: quote) }
            let byte = base[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error(.invalidEscape, at: escapeStart)
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    private func appendUTF8(_ scalar: UInt32, to bytes: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            bytes.append(UInt8(scalar))
        case 0x80..<0x800:
            bytes.append(UInt8(0xC0 | scalar >> 6))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            bytes.append(UInt8(0xE0 | scalar >> 12))
            bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        default:
            bytes.append(UInt8(0xF0 | scalar >> 18))
            bytes.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    // MARK: - Errors

    private func controlCharacter(at offset: Int) -> JSONError {
        var result = error(.controlCharacterInString, at: offset)
        result.found = String(describingByte: base[offset])
        return result
    }

    /// The error for invalid UTF-8 somewhere in `range`, pointing at the first bad byte.
    private func invalidUTF8(in range: Range<Int>) -> JSONError {
        let offset = UTF8Validation.firstInvalidOffset(base, range) ?? range.lowerBound
        var result = error(.invalidUTF8, at: offset)
        result.found = String(describingByte: base[offset])
        return result
    }

    /// An error for the byte at `position`, which does not fit what was expected.
    private func unexpected(expected: String) -> JSONError {
        if base[position] >= 0x80 {
            guard let (scalar, _) = UTF8Validation.decodeScalar(base, position, end) else {
                return invalidUTF8(in: position..<end)
            }
            var result = error(.unexpectedCharacter(base[position]), at: position, expected: expected)
            let hex = String(scalar.value, radix: 16, uppercase: true)
            result.found = "'\(scalar)' (U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex))"
            return result
        }
        var result = error(.unexpectedCharacter(base[position]), at: position, expected: expected)
        result.found = String(describingByte: base[position])
        return result
    }

    private func error(_ kind: JSONError.Kind, at offset: Int, expected: String? = nil) -> JSONError {
        let (line, column) = lineAndColumn(of: offset)
        var result = JSONError(kind, offset: offset, line: line, column: column)
        result.expectation = expected
        if kind == .trailingGarbage, offset < end { result.found = String(describingByte: base[offset]) }
        return result
    }

    /// 1-based line and column (in Unicode scalars) of a byte offset; only computed on error.
    private func lineAndColumn(of offset: Int) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        var index = 0
        if end >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF { index = 3 }
        let limit = min(offset, end)
        while index < limit {
            let byte = base[index]
            if byte == 0x0A || (byte == 0x0D && (index + 1 >= end || base[index + 1] != 0x0A)) {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80, byte != 0x0D {
                column += 1
            }
            index += 1
        }
        return (line, column)
    }
}

extension String {
    /// A byte shown in a message: `'x'` for printable ASCII, otherwise its hex value.
    init(describingByte byte: UInt8) {
        switch byte {
        case 0x0A: self = "a newline (U+000A)"
        case 0x09: self = "a tab (U+0009)"
        case 0x0D: self = "a carriage return (U+000D)"
        case 0x21...0x7E: self = "'\(Character(Unicode.Scalar(byte)))'"
        case 0x20: self = "a space"
        default:
            let hex = String(byte, radix: 16, uppercase: true)
            self = byte < 0x80 ? "U+00\(hex.count == 1 ? "0" : "")\(hex)" : "byte 0x\(hex)"
        }
    }
}

/// Locating UTF-8 errors precisely (only used after a fast validation failed).
enum UTF8Validation {
    /// Decodes one scalar at `index`, or returns nil when the bytes there are not valid UTF-8.
    static func decodeScalar(_ base: UnsafePointer<UInt8>, _ index: Int, _ end: Int) -> (Unicode.Scalar, Int)? {
        let lead = base[index]
        let length: Int
        var value: UInt32
        let lowerBound: UInt32
        switch lead {
        case 0x00..<0x80: return (Unicode.Scalar(lead), 1)
        case 0xC2...0xDF: length = 2; value = UInt32(lead & 0x1F); lowerBound = 0x80
        case 0xE0...0xEF: length = 3; value = UInt32(lead & 0x0F); lowerBound = 0x800
        case 0xF0...0xF4: length = 4; value = UInt32(lead & 0x07); lowerBound = 0x10000
        default: return nil
        }
        guard end - index >= length else { return nil }
        for offset in 1..<length {
            let byte = base[index + offset]
            guard byte & 0xC0 == 0x80 else { return nil }
            value = value << 6 | UInt32(byte & 0x3F)
        }
        guard value >= lowerBound, let scalar = Unicode.Scalar(value) else { return nil }
        return (scalar, length)
    }

    /// The offset of the first byte in `range` that does not start a valid UTF-8 sequence.
    static func firstInvalidOffset(_ base: UnsafePointer<UInt8>, _ range: Range<Int>) -> Int? {
        var index = range.lowerBound
        while index < range.upperBound {
            guard let (_, length) = decodeScalar(base, index, range.upperBound) else { return index }
            index += length
        }
        return nil
    }
}
