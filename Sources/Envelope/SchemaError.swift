/// Why a field whitelist (`--field` specs or a `--schema` file) could not be built.
///
/// `description` is one sentence naming the cause and the fix.
public struct SchemaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kind of problem.
    public enum Kind: Equatable, Sendable {
        /// A field spec without `:` (the associated value is the spec).
        case malformedFieldSpec(String)
        /// A field spec with nothing before the `:` (the associated value is the spec).
        case emptyFieldName(String)
        /// A type name that is not one of ``FieldSchema/typeNames``.
        case unknownFieldType(field: String, type: String)
        /// The same field declared twice.
        case duplicateField(String)
        /// The schema file's JSON is not an object (the associated value is its JSON type).
        case schemaNotAnObject(got: String)
        /// A schema file maps a field to something other than a type-name string.
        case fieldTypeNotAString(field: String, got: String)
    }

    /// What went wrong.
    public var kind: Kind

    /// Creates an error of the given kind.
    public init(_ kind: Kind) {
        self.kind = kind
    }

    private static var typeList: String { FieldSchema.typeNames.joined(separator: ", ") }

    /// One sentence naming the cause and the fix.
    public var description: String {
        switch kind {
        case let .malformedFieldSpec(spec):
            "field \"\(spec)\" has no type; write it as NAME:TYPE, for example speed:number"
        case let .emptyFieldName(spec):
            "field \"\(spec)\" has no name before ':'; write it as NAME:TYPE, for example speed:number"
        case let .unknownFieldType(field, type):
            "field \"\(field)\" has unknown type \"\(type)\"; use one of \(Self.typeList)"
        case let .duplicateField(field):
            "field \"\(field)\" is declared twice; keep one declaration"
        case let .schemaNotAnObject(got):
            "the schema must be a JSON object such as {\"speed\":\"number\",\"mode\":\"string\"}, not \(withArticle(got))"
        case let .fieldTypeNotAString(field, got):
            "field \"\(field)\" in the schema maps to \(withArticle(got)); give its type as a string, one of \(Self.typeList)"
        }
    }
}
