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
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}
