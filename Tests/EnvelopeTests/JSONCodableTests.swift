import Envelope
import Foundation
import Testing

@Suite("JSONValue Codable")
struct JSONCodableTests {
    private struct Wrapper: Codable, Equatable {
        var label: String
        var value: JSONValue
    }

    @Test("JSONValue embeds in Codable types and survives JSONEncoder/JSONDecoder")
    func codableRoundTrip() throws {
        let original = Wrapper(label: "w", value: ["a": [1, 2.5, "s", true, nil], "b": ["c": -7]])
        let data = try JSONEncoder().encode(original)
        let decoded = try JSONDecoder().decode(Wrapper.self, from: data)
        #expect(decoded == original)
        // Foundation's bytes are JSON our parser reads to the same value.
        #expect(try JSONValue(parsing: Array(data))["value"] == original.value)
    }

    @Test("booleans stay booleans and integers stay integers through Codable")
    func codableKeepsTypes() throws {
        let decoded = try JSONDecoder().decode(JSONValue.self, from: Data(#"[true, 1, 1.5]"#.utf8))
        guard case let .array(elements) = decoded, elements.count == 3 else {
            Issue.record("expected a three-element array, got \(decoded)")
            return
        }
        #expect(elements[0].typeName == "boolean")
        #expect(elements[1].typeName == "integer")
        #expect(elements[2].typeName == "number")
    }
}
