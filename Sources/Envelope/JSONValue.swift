public import OrderedCollections

/// A JSON object: keys in the order they were first seen (encoding keeps that order).
public typealias JSONObject = OrderedDictionary<String, JSONValue>

/// Any JSON value, with integers kept exact.
///
/// Integers that fit in `Int64` are `.int`, every other number is `.double`.
/// Equality is JSON equality: `.int(1) == .double(1.0)`, and objects compare
/// as maps (key order does not matter for equality, only for encoding).
///
/// ```swift
/// let value: JSONValue = ["speed": 1.5, "mode": "wave"]
/// let bytes = value.encoded()            // {"speed":1.5,"mode":"wave"}
/// let back = try JSONValue(parsing: bytes)
/// ```
///
/// ## Decoding rules
///
/// `init(parsing:)` is StateCast's own parser over raw UTF-8 bytes. Foundation's
/// `JSONSerialization` is not used: it turns integers into `NSNumber`/`Double`
/// (losing exactness above 2^53), forgets object key order, and is slower on
/// this hot path (every message the host sends and every viewer receives).
///
/// - **Grammar**: strict RFC 8259. No comments, no trailing commas, no single
///   quotes, no `NaN`/`Infinity` (``JSONError/Kind/nonFiniteNumber``), no
///   leading zeros (`01`), no `+1`, `.5` or `1.` (``JSONError/Kind/invalidNumber``).
///   Whitespace is space, tab, CR and LF, allowed between any two tokens.
/// - **One value per input**: anything but whitespace after it is
///   ``JSONError/Kind/trailingGarbage``; an input with no value is
///   ``JSONError/Kind/emptyInput``.
/// - **Byte-order mark**: a leading UTF-8 BOM (`EF BB BF`) is accepted and
///   skipped (editors on some systems write one). A BOM anywhere else is an error.
/// - **Integers** (no fraction, no exponent) that fit in `Int64` decode as
///   `.int`, exactly, from `Int64.min` to `Int64.max`. Larger integers decode as
///   `.double` (nearest value). `-0` decodes as `.double(-0.0)` to keep its sign.
/// - **Other numbers** decode as `.double`, correctly rounded (so any double
///   written with its shortest representation reads back bit-exactly).
///   Magnitudes beyond `Double.greatestFiniteMagnitude` (`1e400`) are
///   ``JSONError/Kind/numberOutOfRange``; numbers too small for a double
///   (`1e-400`) round to zero, as in every JSON implementation we know.
/// - **Strings**: must be valid UTF-8 (``JSONError/Kind/invalidUTF8``, pointing
///   at the bad byte); raw control characters U+0000–U+001F must be escaped
///   (``JSONError/Kind/controlCharacterInString``). `\uXXXX` escapes may encode any
///   scalar; a surrogate pair (`\uD83D\uDE00`) decodes to one scalar. A lone
///   surrogate cannot be represented in a Swift `String` (or in UTF-8) and is
///   rejected as ``JSONError/Kind/loneSurrogate`` rather than silently replaced
///   with U+FFFD, for the same reason invalid UTF-8 is rejected: the receiver
///   would otherwise hold a value the sender never had.
/// - **Duplicate keys**: the last value wins and the key keeps the position of
///   its first occurrence, like JavaScript's `JSON.parse`.
/// - **Depth**: at most ``maximumNestingDepth`` (512) nested arrays/objects;
///   deeper input is ``JSONError/Kind/tooDeep(limit:)``. The parser is iterative,
///   so even a 100 000-deep input fails cleanly instead of overflowing the stack.
/// - **Size**: no limit beyond memory; a 10 MB string decodes in one bulk copy
///   (strings without escapes are validated and built from their byte range,
///   never character by character).
///
/// Encoding is described on ``encoded()``.
///
/// Values built in code may nest deeper than 512; encoding and comparing them
/// recurses, so keep programmatic nesting to a sane depth.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

extension JSONValue {
    /// The member named `key` if this is an object that has it, otherwise nil.
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members[key]
    }

    /// The members, if this is an object.
    public var objectValue: JSONObject? {
        guard case let .object(members) = self else { return nil }
        return members
    }

    /// The elements, if this is an array.
    public var arrayValue: [JSONValue]? {
        guard case let .array(elements) = self else { return nil }
        return elements
    }

    /// The text, if this is a string.
    public var stringValue: String? {
        guard case let .string(text) = self else { return nil }
        return text
    }

    /// The truth value, if this is a boolean.
    public var boolValue: Bool? {
        guard case let .bool(value) = self else { return nil }
        return value
    }

    /// The number as an exact `Int64`: an `.int`, or an integral `.double` in range.
    public var int64Value: Int64? {
        switch self {
        case let .int(value): return value
        case let .double(value): return Int64(exactly: value)
        default: return nil
        }
    }

    /// The number as a `Double` (an `.int` is converted, possibly rounding above 2^53).
    public var doubleValue: Double? {
        switch self {
        case let .int(value): return Double(value)
        case let .double(value): return value
        default: return nil
        }
    }

    /// True for `.null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The JSON type, for messages: "null", "boolean", "integer" (for `.int`),
    /// "number" (for `.double`), "string", "array" or "object".
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int: "integer"
        case .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}
