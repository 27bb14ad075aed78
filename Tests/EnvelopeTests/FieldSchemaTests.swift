import Envelope
import Testing

@Suite("Field whitelist")
struct FieldSchemaTests {
    typealias Rejection = FieldSchema.Rejection

    @Test("accepts whitelisted keys of the right type and rejects the rest with reasons")
    func filter() {
        let schema = FieldSchema(["speed": .number, "mode": .string, "count": .integer, "on": .boolean,
                                  "opts": .object, "list": .array])
        let result = schema.filter([
            "speed": 2.5, "mode": 3, "debug": true, "count": 4, "on": false, "opts": ["a": 1], "list": "x",
        ])
        #expect(result.accepted == ["speed": 2.5, "count": 4, "on": false, "opts": ["a": 1]])
        #expect(result.rejected == [
            Rejection(key: "mode", reason: .wrongType(expected: .string, got: "integer")),
            Rejection(key: "debug", reason: .unknownField),
            Rejection(key: "list", reason: .wrongType(expected: .array, got: "string")),
        ])
        #expect(result.rejected.map(\.description) == [
            #"config key "mode" rejected: expected string, got integer"#,
            #"config key "debug" rejected: not in the schema"#,
            #"config key "list" rejected: expected array, got string"#,
        ])
    }

    @Test("number accepts integers and doubles; integer accepts integral values only")
    func numberAndIntegerRules() {
        #expect(FieldSchema.FieldType.number.accepts(1))
        #expect(FieldSchema.FieldType.number.accepts(2.5))
        #expect(FieldSchema.FieldType.integer.accepts(1))
        #expect(FieldSchema.FieldType.integer.accepts(3.0))
        #expect(!FieldSchema.FieldType.integer.accepts(2.5))
        #expect(!FieldSchema.FieldType.integer.accepts(.double(.infinity)))
        #expect(!FieldSchema.FieldType.number.accepts("1"))
        #expect(!FieldSchema.FieldType.boolean.accepts(1))
        #expect(!FieldSchema.FieldType.string.accepts(nil))
        let schema = FieldSchema(["n": .integer])
        #expect(schema.filter(["n": 2.5]).rejected == [Rejection(key: "n", reason: .wrongType(expected: .integer, got: "number"))])
    }

    @Test("null is rejected by every typed field")
    func nullForTypedField() {
        for type in FieldSchema.FieldType.allCases {
            #expect(!type.accepts(nil), "\(type) must not accept null")
        }
    }

    @Test("a derived schema types every number as number: a field seen as 1 accepts 2.5")
    func derivedNumbers() {
        let schema = FieldSchema.derived(from: ["count": 1, "ratio": 1.0, "mode": "wave", "on": true, "o": [:], "a": []])
        #expect(schema.fields == ["count": .number, "ratio": .number, "mode": .string, "on": .boolean, "o": .object, "a": .array])
        #expect(!schema.fields.values.contains(.integer))
        let result = schema.filter(["count": 2.5, "ratio": 7, "mode": 1])
        #expect(result.accepted == ["count": 2.5, "ratio": 7])
        #expect(result.rejected == [Rejection(key: "mode", reason: .wrongType(expected: .string, got: "integer"))])
    }

    @Test("a derived schema lets a key that was null take any value")
    func derivedNull() {
        let schema = FieldSchema.derived(from: ["selection": nil, "speed": 1])
        #expect(schema.fields == ["speed": .number])
        #expect(schema.untypedFields == ["selection"])
        #expect(schema.filter(["selection": "b"]).accepted == ["selection": "b"])
        #expect(schema.filter(["selection": [1, 2]]).accepted == ["selection": [1, 2]])
        #expect(schema.filter(["selection": nil]).accepted == ["selection": nil])
        #expect(schema.filter(["speed": nil]).rejected == [Rejection(key: "speed", reason: .wrongType(expected: .number, got: "null"))])
    }

    @Test("field specs parse into a schema")
    func fieldSpecs() throws {
        let schema = try FieldSchema(fieldSpecs: ["speed:number", " mode : string ", "n:Integer", "extra:any", "a:b:boolean"])
        #expect(schema.fields == ["speed": .number, "mode": .string, "n": .integer, "a:b": .boolean])
        #expect(schema.untypedFields == ["extra"])
        #expect(try FieldSchema(fieldSpecs: []) == FieldSchema())
    }

    @Test("field spec errors name the cause and the fix",
          arguments: [
              ("speed", SchemaError.Kind.malformedFieldSpec("speed")),
              (":number", .emptyFieldName(":number")),
              ("  :number", .emptyFieldName("  :number")),
              ("speed:float", .unknownFieldType(field: "speed", type: "float")),
              ("speed:", .unknownFieldType(field: "speed", type: "")),
          ])
    func fieldSpecErrors(_ spec: String, _ expected: SchemaError.Kind) {
        do {
            _ = try FieldSchema(fieldSpecs: [spec])
            Issue.record("\(spec) should be rejected")
        } catch {
            #expect(error.kind == expected)
            #expect(!error.description.isEmpty)
        }
    }

    @Test("a field declared twice is an error")
    func duplicateSpec() {
        #expect(throws: SchemaError(.duplicateField("speed"))) {
            try FieldSchema(fieldSpecs: ["speed:number", "speed:integer"])
        }
        #expect(SchemaError(.unknownFieldType(field: "speed", type: "float")).description
            == #"field "speed" has unknown type "float"; use one of number, integer, string, boolean, object, array, any"#)
        #expect(SchemaError(.malformedFieldSpec("speed")).description
            == #"field "speed" has no type; write it as NAME:TYPE, for example speed:number"#)
    }

    @Test("schema files: flat and wrapped forms")
    func schemaJSON() throws {
        let flat = try FieldSchema(schemaJSON: parse(#"{"speed":"number","mode":"string","x":"any"}"#))
        #expect(flat.fields == ["speed": .number, "mode": .string])
        #expect(flat.untypedFields == ["x"])
        let wrapped = try FieldSchema(schemaJSON: parse(#"{"fields":{"speed":"number","mode":"string","x":"any"}}"#))
        #expect(wrapped == flat)
        // A flat schema may declare a field named "fields".
        let named = try FieldSchema(schemaJSON: parse(#"{"fields":"array"}"#))
        #expect(named.fields == ["fields": .array])
    }

    @Test("schema file errors")
    func schemaJSONErrors() throws {
        #expect(throws: SchemaError(.schemaNotAnObject(got: "array"))) {
            try FieldSchema(schemaJSON: parse(#"["speed"]"#))
        }
        #expect(throws: SchemaError(.fieldTypeNotAString(field: "speed", got: "integer"))) {
            try FieldSchema(schemaJSON: parse(#"{"speed":1}"#))
        }
        #expect(throws: SchemaError(.unknownFieldType(field: "speed", type: "float"))) {
            try FieldSchema(schemaJSON: parse(#"{"speed":"float"}"#))
        }
        #expect(throws: SchemaError(.fieldTypeNotAString(field: "fields", got: "array"))) {
            try FieldSchema(schemaJSON: parse(#"{"fields":[]}"#))
        }
    }
}
