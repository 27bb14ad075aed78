extension JSONValue: Equatable {
    /// JSON equality: numbers compare by value across `.int`/`.double`,
    /// objects compare as maps regardless of key order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.int(a), .double(b)), let (.double(b), .int(a)):
            // Exact comparison: a Double equals an Int64 only if it is integral and in range.
            guard b.rounded(.towardZero) == b, b >= -0x1p63, b < 0x1p63 else { return false }
            return Int64(b) == a
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                guard let other = b[key], other == value else { return false }
            }
            return true
        default: return false
        }
    }
}
