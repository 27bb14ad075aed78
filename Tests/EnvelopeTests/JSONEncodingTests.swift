import Envelope
import Testing

@Suite("JSON encoding")
struct JSONEncodingTests {
    @Test("compact output keeps object key order")
    func keyOrder() throws {
        let value: JSONValue = ["zeta": 1, "alpha": [true, false, nil], "mid": ["b": "x", "a": 2.5]]
        #expect(value.jsonText == #"{"zeta":1,"alpha":[true,false,null],"mid":{"b":"x","a":2.5}}"#)
        let reparsed = try JSONValue(parsing: value.encoded())
        #expect(reparsed.objectValue.map { Array($0.keys) } == ["zeta", "alpha", "mid"])
        #expect(reparsed.encoded() == value.encoded())
    }

    @Test("decoding then encoding compact JSON is byte-exact")
    func byteExactReencoding() throws {
        let golden = #"{"name":"demo","n":[0,-1,9223372036854775807,1.5,1e-07,"é\n"],"o":{},"a":[],"t":true,"f":false,"z":null}"#
        #expect(try parse(golden).jsonText == golden)
    }

    @Test("encode(into:) appends to an existing buffer")
    func encodeIntoAppends() {
        var buffer = utf8("prefix ")
        JSONValue.array([1, "two"]).encode(into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == #"prefix [1,"two"]"#)
    }

    @Test("description is the compact text")
    func description() {
        let value: JSONValue = ["k": [1, 2]]
        #expect(value.description == #"{"k":[1,2]}"#)
        #expect("\(value)" == #"{"k":[1,2]}"#)
    }

    @Test("pretty text indents members and elements")
    func prettyText() {
        let value: JSONValue = ["a": [1, 2], "b": [:], "c": "x"]
        #expect(value.prettyText() == "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {},\n  \"c\": \"x\"\n}\n")
    }

    @Test("literals build the expected cases")
    func literals() {
        let value: JSONValue = [nil, true, 3, 2.5, "s", [1], ["k": 1]]
        #expect(value == .array([.null, .bool(true), .int(3), .double(2.5), .string("s"), .array([.int(1)]), .object(["k": .int(1)])]))
    }

    @Test("accessors and type names")
    func accessors() {
        let value: JSONValue = ["s": "x", "o": ["k": 1], "a": [1]]
        #expect(value["s"] == "x")
        #expect(value["missing"] == nil)
        #expect(JSONValue.string("x")["s"] == nil)
        #expect(value["o"]?.objectValue == ["k": 1])
        #expect(value["s"]?.stringValue == "x")
        #expect(value["a"]?.stringValue == nil)
        let names = [JSONValue.null, true, 1, 1.5, "s", [], [:]].map(\.typeName)
        #expect(names == ["null", "boolean", "integer", "number", "string", "array", "object"])
    }

    @Test("JSON equality ignores key order and int/double representation")
    func equality() throws {
        #expect(try parse(#"{"a":1,"b":[2.0]}"#) == parse(#"{"b":[2],"a":1.0}"#))
        #expect(try parse(#"{"a":1}"#) != parse(#"{"a":1.5}"#))
        #expect(try parse(#"{"a":1}"#) != parse(#"{"a":1,"b":2}"#))
    }
}
