import Envelope
import Foundation
import Testing
@testable import ViewerClient

/// The cases of Tests/Fixtures/viewer-position-cases.json, which the node
/// tests of web/statecast.js run too: both viewers must end in the same place.
@Suite("Viewer position and config after envelopes (shared fixture with statecast.js)")
struct ViewerPositionFixtureTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let schema: JSONValue
        let messages: [JSONValue]
        let expect: JSONObject
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/viewer-position-cases.json")
        guard let bytes = try? Data(contentsOf: url), let root = try? JSONValue(parsing: Array(bytes)),
              case .object(let object) = root, case .array(let list)? = object["cases"]
        else { return [] }
        return list.compactMap { item in
            guard case .object(let fields) = item, case .string(let name)? = fields["name"],
                  case .array(let messages)? = fields["messages"], case .object(let expect)? = fields["expect"]
            else { return nil }
            return Case(name: name, schema: fields["schema"] ?? .null, messages: messages, expect: expect)
        }
    }()

    @Test("the fixture file is read")
    func fixtureIsRead() {
        #expect(Self.cases.count >= 6)
    }

    @Test(arguments: cases)
    func viewerEndsWhereTheFixtureSays(_ testCase: Case) throws {
        let schema = testCase.schema == .null ? nil : try FieldSchema(schemaJSON: testCase.schema)
        var state = ViewerState(schema: schema)
        for message in testCase.messages { _ = state.apply(.text(message.encoded())) }
        #expect(state.lastSeq.map(JSONValue.int) ?? .null == testCase.expect["seq"])
        #expect(state.lastEpoch.map(JSONValue.string) ?? .null == testCase.expect["epoch"])
        #expect(state.session.map { JSONValue.object($0.config) } ?? .null == testCase.expect["config"])
    }
}
