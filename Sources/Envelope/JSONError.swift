/// Why a JSON text could not be decoded, and where.
///
/// `offset` is the 0-based byte offset of the offending byte in the input
/// (a leading byte-order mark counts); `line` and `column` are 1-based and
/// count Unicode scalars, the way an editor shows them (the BOM is not a
/// column). `description` is one sentence a user can act on:
///
/// ```
/// line 3, column 14: expected ',' or '}' after an object member, found 'x'
/// ```
public struct JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kind of problem. Switch on it to react to a specific failure.
    public enum Kind: Equatable, Sendable {
        /// The input holds no JSON value (it is empty, or only whitespace and a BOM).
        case emptyInput
        /// The input ends in the middle of a value (outside a string).
        case unexpectedEnd
        /// A byte that cannot start or continue the value here (the first byte of the character).
        case unexpectedCharacter(UInt8)
        /// Bytes that are not valid UTF-8.
        case invalidUTF8
        /// Arrays and objects nest deeper than `limit`.
        case tooDeep(limit: Int)
        /// A number too large for a `Double` (such as `1e400`).
        case numberOutOfRange
        /// A malformed number: a lone `-`, a leading zero (`01`), `1.`, `.5`, `+1`, `1e`.
        case invalidNumber
        /// A backslash escape JSON does not define (`\x`), or `\u` without four hex digits.
        case invalidEscape
        /// A `\u` escape of a UTF-16 surrogate that is not part of a valid pair.
        case loneSurrogate
        /// A raw control character (U+0000–U+001F) inside a string; it must be escaped.
        case controlCharacterInString
        /// A string whose closing quote is missing; `offset` points at its opening quote.
        case unterminatedString
        /// Something follows the complete top-level value.
        case trailingGarbage
        /// `NaN`, `Infinity` or `-Infinity`, which JSON does not allow.
        case nonFiniteNumber
    }

    /// What went wrong.
    public var kind: Kind
    /// 0-based byte offset of the problem in the input.
    public var offset: Int
    /// 1-based line of the problem.
    public var line: Int
    /// 1-based column (in Unicode scalars) of the problem.
    public var column: Int
    /// What the parser expected at this point, for the message (for example "a value").
    var expectation: String?
    /// The character found at the offset, rendered for the message (for example `'x'`).
    var found: String?

    /// Creates an error; `line` and `column` are 1-based.
    public init(_ kind: Kind, offset: Int, line: Int, column: Int) {
        self.kind = kind
        self.offset = offset
        self.line = line
        self.column = column
    }

    /// One sentence naming the position, the cause and, where it helps, the fix.
    public var description: String {
        "line \(line), column \(column): \(reason)"
    }

    /// The message without its position.
    public var reason: String {
        switch kind {
        case .emptyInput:
            return "the input is empty; expected a JSON value such as {} or []"
        case .unexpectedEnd:
            return "the input ends too early; expected \(expectation ?? "more JSON")"
        case .unexpectedCharacter:
            return "expected \(expectation ?? "a JSON value"), found \(found ?? "an unexpected character")"
        case .invalidUTF8:
            return "invalid UTF-8 (\(found ?? "a byte that starts no character")); save the input as UTF-8"
        case let .tooDeep(limit):
            return "arrays and objects nest more than \(limit) levels deep; flatten the structure"
        case .numberOutOfRange:
            return "number is too large for a 64-bit floating-point value"
        case .invalidNumber:
            return "malformed number; JSON numbers look like 0, -12, 3.5 or 1e-7 (no leading zeros, no '+', digits on both sides of '.')"
        case .invalidEscape:
            return "invalid escape sequence in a string; use one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u followed by four hex digits"
        case .loneSurrogate:
            return "\\u escape of a lone UTF-16 surrogate; a high surrogate (\\uD800-\\uDBFF) must be followed by a low one (\\uDC00-\\uDFFF)"
        case .controlCharacterInString:
            return "raw control character \(found ?? "") inside a string; write it as an escape such as \\n, \\t or \\u0001"
        case .unterminatedString:
            return "this string is never closed; add the missing '\"'"
        case .trailingGarbage:
            return "unexpected \(found ?? "text") after the end of the JSON value; remove it (one value per input)"
        case .nonFiniteNumber:
            return "NaN and Infinity are not valid JSON; use null, a string or a finite number"
        }
    }
}
