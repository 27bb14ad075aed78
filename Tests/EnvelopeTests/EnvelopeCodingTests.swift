import Envelope
import Testing

@Suite("Envelope wire format (SPEC §2)")
struct EnvelopeCodingTests {
    static let demoSession = Session(
        name: "demo",
        data: ["points": [1, 2, 3], "title": "Wave"],
        config: ["speed": 1.5, "mode": "wave"],
        metadata: ["owner": "ana"]
    )

    @Test("the SPEC config_update example without seq decodes")
    func specConfigUpdateWithoutSeq() throws {
        let envelope = try Envelope(decoding: utf8(#"{"type":"config_update","payload":{"speed":1.5,"mode":"wave"}}"#))
        #expect(envelope.type == "config_update")
        #expect(envelope.seq == nil)
        #expect(envelope.epoch == nil)
        #expect(envelope.payload == .configUpdate(["speed": 1.5, "mode": "wave"]))
    }

    @Test("the SPEC examples with seq decode")
    func specExamplesWithSeq() throws {
        let session = try Envelope(decoding: utf8(
            #"{"type":"session_update","seq":41,"payload":{"name":"…","data":{},"config":{},"metadata":{}}}"#
        ))
        #expect(session == Envelope(.sessionUpdate(Session(name: "…")), seq: 41))
        let config = try Envelope(decoding: utf8(#"{"type":"config_update","seq":42,"payload":{"speed":1.5,"mode":"wave"}}"#))
        #expect(config == Envelope(.configUpdate(["speed": 1.5, "mode": "wave"]), seq: 42))
    }

    @Test("golden encodings are byte-exact")
    func goldenEncodings() {
        let cases: [(Envelope, String)] = [
            (Envelope(.configUpdate(["speed": 1.5, "mode": "wave"])),
             #"{"type":"config_update","payload":{"speed":1.5,"mode":"wave"}}"#),
            (Envelope(.configUpdate(["speed": 1.5, "mode": "wave"]), seq: 42),
             #"{"type":"config_update","seq":42,"payload":{"speed":1.5,"mode":"wave"}}"#),
            (Envelope(.sessionUpdate(Session(name: "…")), seq: 41),
             #"{"type":"session_update","seq":41,"payload":{"name":"…","data":{},"config":{},"metadata":{}}}"#),
            (Envelope(.sessionUpdate(Self.demoSession), seq: 1, epoch: "run-7"),
             #"{"type":"session_update","seq":1,"epoch":"run-7","payload":{"name":"demo","data":{"points":[1,2,3],"title":"Wave"},"config":{"speed":1.5,"mode":"wave"},"metadata":{"owner":"ana"}}}"#),
            (Envelope(.configUpdate([:]), seq: -3),
             #"{"type":"config_update","seq":-3,"payload":{}}"#),
        ]
        for (envelope, golden) in cases {
            #expect(String(decoding: envelope.encoded(), as: UTF8.self) == golden)
            #expect(envelope.json.jsonText == golden, "json and encoded() must agree")
        }
    }

    @Test("our encoder's output decodes back to an equal envelope",
          arguments: [
              Envelope(.configUpdate(["speed": 1.5, "mode": "wave", "n": .int(.max), "x": nil])),
              Envelope(.sessionUpdate(EnvelopeCodingTests.demoSession), seq: 9_007_199_254_740_993),
              Envelope(.sessionUpdate(Session(name: "ünï \"q\"\n", data: [[["deep": [1.0e-7]]]])), seq: 0, epoch: "é"),
              Envelope(.sessionUpdate(Session(name: "", data: nil))),
          ])
    func roundTrip(_ envelope: Envelope) throws {
        let bytes = envelope.encoded()
        let decoded = try Envelope(decoding: bytes)
        #expect(decoded == envelope)
        #expect(decoded.encoded() == bytes, "re-encoding must be byte-identical")
    }

    @Test("encode(into:) appends the same bytes as encoded()")
    func encodeInto() {
        let envelope = Envelope(.configUpdate(["a": 1]), seq: 2)
        var buffer: [UInt8] = [0x41]
        envelope.encode(into: &buffer)
        #expect(buffer == [0x41] + envelope.encoded())
    }

    @Test("decoding from an already parsed value matches decoding bytes")
    func decodeFromJSON() throws {
        let text = #"{"type":"config_update","seq":42,"payload":{"speed":1.5}}"#
        #expect(try Envelope(json: parse(text)) == Envelope(decoding: utf8(text)))
    }

    @Test("envelope errors describe the cause in one sentence")
    func errorDescriptions() {
        #expect(envelopeError(utf8(#"{"type":"ping","payload":{}}"#))?.description
            == #"message type "ping" is unknown (this version knows "session_update" and "config_update")"#)
        #expect(envelopeError(utf8("{\"type\":\n}"))?.description
            == "message is not valid JSON: line 2, column 1: expected a JSON value, found '}'")
    }
}

@Suite("Session JSON form")
struct SessionJSONTests {
    @Test("members are encoded in the order name, data, config, metadata")
    func memberOrder() {
        let session = Session(name: "s", data: 1, config: ["b": 1, "a": 2], metadata: ["m": true])
        #expect(session.json.jsonText == #"{"name":"s","data":1,"config":{"b":1,"a":2},"metadata":{"m":true}}"#)
        #expect(session.encoded() == session.json.encoded())
    }

    @Test("data, config and metadata default to empty objects; extra members are ignored")
    func defaults() throws {
        let session = try Session(json: parse(#"{"name":"only","extra":[1]}"#))
        #expect(session == Session(name: "only"))
        #expect(session.data == [:])
        let explicitNullData = try Session(json: parse(#"{"name":"n","data":null}"#))
        #expect(explicitNullData.data == nil)
    }

    @Test("wrong shapes are rejected with a specific error")
    func wrongShapes() throws {
        func kind(_ text: String) throws -> EnvelopeError.Kind? {
            let value = try parse(text)
            do {
                _ = try Session(json: value)
                return nil
            } catch {
                return error.kind
            }
        }
        #expect(try kind("[]") == .sessionNotAnObject(got: "array"))
        #expect(try kind(#"{"data":{}}"#) == .missingName)
        #expect(try kind(#"{"name":null}"#) == .wrongMemberType(member: "name", expected: "string", got: "null"))
        #expect(try kind(#"{"name":"n","config":"x"}"#) == .wrongMemberType(member: "config", expected: "object", got: "string"))
        #expect(try kind(#"{"name":"n","metadata":[]}"#) == .wrongMemberType(member: "metadata", expected: "object", got: "array"))
        #expect(EnvelopeError(.wrongMemberType(member: "config", expected: "object", got: "string")).description
            == #"the session's "config" must be an object, not a string"#)
    }

    @Test("session equality is JSON equality")
    func equality() {
        #expect(Session(name: "n", config: ["a": 1, "b": 2]) == Session(name: "n", config: ["b": 2.0, "a": 1]))
        #expect(Session(name: "n", config: ["a": 1]) != Session(name: "n", config: ["a": 1.5]))
    }
}
