public import OrderedCollections

/// The whitelist a viewer applies to `config_update` payloads (SPEC §4): which
/// config keys may change, and to which JSON type.
///
/// Build it from an explicit schema (``init(fieldSpecs:)`` for `--field
/// name:type`, ``init(schemaJSON:)`` for `--schema FILE`) or derive it from the
/// config of the last full state (``derived(from:)``).
///
/// ```swift
/// let schema = try FieldSchema(fieldSpecs: ["speed:number", "mode:string"])
/// let result = schema.filter(["speed": 2.5, "mode": 3, "debug": true])
/// // result.accepted == ["speed": 2.5]
/// // result.rejected: mode (wrong type: expected string, got integer), debug (unknown field)
/// ```
public struct FieldSchema: Sendable, Equatable {
    /// The JSON type a field accepts.
    public enum FieldType: String, Sendable, CaseIterable {
        /// Any number: `.int` or `.double`.
        case number
        /// An integer: `.int`, or a `.double` with no fractional part (`3.0`).
        case integer
        case string
        case boolean
        case object
        case array

        /// Whether `value` has this type. `null` has none of these types.
        public func accepts(_ value: JSONValue) -> Bool {
            switch (self, value) {
            case (.number, .int), (.number, .double), (.integer, .int): true
            case let (.integer, .double(number)): number.isFinite && number.rounded(.towardZero) == number
            case (.string, .string), (.boolean, .bool), (.object, .object), (.array, .array): true
            default: false
            }
        }
    }

    /// Typed fields, in declaration order.
    public var fields: OrderedDictionary<String, FieldType>
    /// Fields that accept any JSON value, `null` included: declared with type
    /// `any`, or derived from a config key whose value was `null`.
    public var untypedFields: OrderedSet<String>

    /// A schema with the given typed fields.
    public init(_ fields: OrderedDictionary<String, FieldType> = [:]) {
        self.fields = fields
        self.untypedFields = []
    }

    /// A schema with typed and untyped fields.
    public init(_ fields: OrderedDictionary<String, FieldType>, untypedFields: OrderedSet<String>) {
        self.fields = fields
        self.untypedFields = untypedFields
    }

    /// The schema implied by a full state's config (SPEC §4).
    ///
    /// Every number becomes `.number`, never `.integer`: JSON does not tell
    /// `1` from `1.0`, so a field first seen as `1` must accept `2.5`. Strings,
    /// booleans, objects and arrays get their own type. A key whose value is
    /// `null` has no type to learn, so it becomes an untyped field that accepts
    /// any value (otherwise the first real value the host sets for it would be
    /// rejected and the viewer would silently fall out of sync).
    public static func derived(from config: JSONObject) -> FieldSchema {
        var schema = FieldSchema()
        for (key, value) in config {
            switch value {
            case .null: schema.untypedFields.append(key)
            case .int, .double: schema.fields[key] = .number
            case .string: schema.fields[key] = .string
            case .bool: schema.fields[key] = .boolean
            case .object: schema.fields[key] = .object
            case .array: schema.fields[key] = .array
            }
        }
        return schema
    }

    /// The type names accepted in field specs and schema files: the ``FieldType`` raw values and `any`.
    public static let typeNames: [String] = FieldType.allCases.map(\.rawValue) + ["any"]

    /// Parses `--field` specs such as `["speed:number", "mode:string", "extra:any"]`.
    ///
    /// Each spec is `NAME:TYPE`, split at the last `:` (so names may contain
    /// colons); spaces around either part are ignored and the type is
    /// case-insensitive. `any` declares an untyped field.
    ///
    /// - Throws: ``SchemaError`` for a spec without `:`, an empty name, an
    ///   unknown type, or a name given twice.
    public init(fieldSpecs: [String]) throws(SchemaError) {
        self.init()
        for spec in fieldSpecs {
            guard let colon = spec.lastIndex(of: ":") else { throw SchemaError(.malformedFieldSpec(spec)) }
            let name = Self.trimmed(spec[..<colon])
            let typeName = Self.trimmed(spec[spec.index(after: colon)...])
            guard !name.isEmpty else { throw SchemaError(.emptyFieldName(spec)) }
            try add(name, typeName: typeName)
        }
    }

    /// Parses a schema file's JSON.
    ///
    /// Two forms are accepted: a flat object `{"speed":"number","mode":"string"}`,
    /// or the same object wrapped as `{"fields":{…}}`. The wrapped form is
    /// recognised only when `fields` is the single member and its value is an
    /// object, so a flat schema may still declare a field named `fields`
    /// (`{"fields":"array"}`). Types are the names of ``typeNames``.
    ///
    /// - Throws: ``SchemaError`` if the JSON is not an object, a type is not a
    ///   string or not a known type name.
    public init(schemaJSON: JSONValue) throws(SchemaError) {
        guard case var .object(members) = schemaJSON else {
            throw SchemaError(.schemaNotAnObject(got: schemaJSON.typeName))
        }
        if members.count == 1, case let .object(wrapped)? = members["fields"] {
            members = wrapped
        }
        self.init()
        for (name, value) in members {
            guard case let .string(typeName) = value else {
                throw SchemaError(.fieldTypeNotAString(field: name, got: value.typeName))
            }
            try add(name, typeName: Self.trimmed(Substring(typeName)))
        }
    }

    private mutating func add(_ name: String, typeName: String) throws(SchemaError) {
        guard fields[name] == nil, !untypedFields.contains(name) else { throw SchemaError(.duplicateField(name)) }
        let lowered = typeName.lowercased()
        if lowered == "any" {
            untypedFields.append(name)
        } else if let type = FieldType(rawValue: lowered) {
            fields[name] = type
        } else {
            throw SchemaError(.unknownFieldType(field: name, type: typeName))
        }
    }

    private static func trimmed(_ text: Substring) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !isSpace($0) }),
              let last = text.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(text[first...last])
    }

    /// Whether the schema lets `key` change to `value`.
    public func accepts(_ value: JSONValue, forKey key: String) -> Bool {
        if let type = fields[key] { return type.accepts(value) }
        return untypedFields.contains(key)
    }

    /// Splits a `config_update` payload into the members the schema accepts
    /// (in payload order) and the rejected ones with their reasons.
    public func filter(_ update: JSONObject) -> FilterResult {
        var result = FilterResult(accepted: [:], rejected: [])
        for (key, value) in update {
            if let type = fields[key] {
                if type.accepts(value) {
                    result.accepted[key] = value
                } else {
                    result.rejected.append(Rejection(key: key, reason: .wrongType(expected: type, got: value.typeName)))
                }
            } else if untypedFields.contains(key) {
                result.accepted[key] = value
            } else {
                result.rejected.append(Rejection(key: key, reason: .unknownField))
            }
        }
        return result
    }

    /// The outcome of ``filter(_:)``.
    public struct FilterResult: Sendable, Equatable {
        /// The members to merge, in payload order.
        public var accepted: JSONObject
        /// The members dropped, in payload order.
        public var rejected: [Rejection]

        /// Creates a result.
        public init(accepted: JSONObject, rejected: [Rejection]) {
            self.accepted = accepted
            self.rejected = rejected
        }
    }

    /// One payload member the schema refused.
    public struct Rejection: Sendable, Equatable, CustomStringConvertible {
        /// Why a member was refused.
        public enum Reason: Sendable, Equatable {
            /// The key is not in the schema.
            case unknownField
            /// The value's JSON type (a ``JSONValue/typeName``) is not the field's type.
            case wrongType(expected: FieldType, got: String)
        }

        /// The config key.
        public var key: String
        /// Why it was refused.
        public var reason: Reason

        /// Creates a rejection.
        public init(key: String, reason: Reason) {
            self.key = key
            self.reason = reason
        }

        /// For example `config key "speed" rejected: expected number, got string`.
        public var description: String {
            switch reason {
            case .unknownField:
                "config key \"\(key)\" rejected: not in the schema"
            case let .wrongType(expected, got):
                "config key \"\(key)\" rejected: expected \(expected.rawValue), got \(got)"
            }
        }
    }
}
