import Envelope
import HostBroadcaster
import Testing

@Suite struct SessionInputTests {
    let base = Session(name: "s", data: ["a": 1], config: ["speed": 1, "mode": "wave"], metadata: ["m": true])

    private func applying(_ text: String) throws -> Session {
        var session = base
        try SessionInput.apply(try JSONValue(parsing: text), to: &session)
        return session
    }

    @Test func configIsMergedKeyByKey() throws {
        let session = try applying(#"{"config":{"speed":2}}"#)
        #expect(session.config == ["speed": 2, "mode": "wave"])
        #expect(session.data == base.data)
    }

    @Test func nullRemovesAConfigKey() throws {
        #expect(try applying(#"{"config":{"mode":null}}"#).config == ["speed": 1])
    }

    @Test func otherMembersAreReplaced() throws {
        let session = try applying(#"{"name":"n","data":[1,2],"metadata":{"x":1}}"#)
        #expect(session.name == "n")
        #expect(session.data == [1, 2])
        #expect(session.metadata == ["x": 1])
        #expect(session.config == base.config)
    }

    @Test func sessionReplacesEverything() throws {
        let session = try applying(#"{"session":{"name":"new","data":{},"config":{"k":true},"metadata":{}}}"#)
        #expect(session == Session(name: "new", data: .object([:]), config: ["k": true], metadata: [:]))
    }

    @Test(arguments: [
        (#"[1,2]"#, "expected a JSON object"),
        (#"{"speed":2}"#, "unknown member \"speed\""),
        (#"{"config":5}"#, "\"config\" must be an object"),
        (#"{"name":5}"#, "\"name\" must be a string"),
        (#"{"metadata":[]}"#, "\"metadata\" must be an object"),
        (#"{}"#, "empty object"),
        (#"{"session":{"name":"x"},"config":{}}"#, "cannot be combined"),
        (#"{"session":7}"#, "not a valid session"),
    ])
    func badLinesAreRejectedAndChangeNothing(line: String, message: String) throws {
        var session = base
        let error = #expect(throws: SessionInputError.self) {
            try SessionInput.apply(try JSONValue(parsing: line), to: &session)
        }
        #expect(error?.description.contains(message) == true, "\(error?.description ?? "")")
        #expect(session == base)
    }
}
