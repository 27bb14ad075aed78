/// The kinds of JSON value a derived schema tells apart (SPEC §2, §4).
///
/// `1` and `1.5` are both ``number``: JSON does not distinguish integers from
/// other numbers, so a change between them is a value change, not a kind change.
///
/// ```swift
/// JSONValue.int(1).kind == JSONValue.double(2.5).kind   // true: both .number
/// JSONValue.null.kind == JSONValue.string("x").kind     // false
/// ```
public enum JSONKind: String, Sendable, CaseIterable {
    case null, boolean, number, string, array, object
}

extension JSONValue {
    /// This value's kind; `.int` and `.double` are both ``JSONKind/number``.
    public var kind: JSONKind {
        switch self {
        case .null: .null
        case .bool: .boolean
        case .int, .double: .number
        case .string: .string
        case .array: .array
        case .object: .object
        }
    }
}
