import Envelope
import Testing
@testable import ViewerClient

@Suite("Applying host messages (whitelist)")
struct ViewerStateTests {
    static let fullState = #"{"type":"session_update","seq":1,"payload":{"name":"demo","data":{"points":[1,2]},"config":{"speed":1,"mode":"wave","debug":false,"limits":{"lo":0},"tags":["a"],"note":null},"metadata":{"owner":"ann"}}}"#

    func text(_ json: String) -> IncomingFrame { .text(Array(json.utf8)) }

    func stateWithFullState(schema: FieldSchema? = nil) -> ViewerState {
        var state = ViewerState(schema: schema)
        _ = state.apply(text(Self.fullState))
        return state
    }

    @Test("session_update replaces the state and reports every member on first arrival")
    func sessionUpdateReplaces() throws {
        var state = ViewerState()
        guard case let .applied(change, rejected) = state.apply(text(Self.fullState)) else {
            Issue.record("not applied")
            return
        }
        #expect(change.seq == 1)
        #expect(change.type == "session_update")
        #expect(change.changedKeys == ["name", "data", "config", "metadata"])
        #expect(rejected.isEmpty)
        #expect(state.session?.name == "demo")

        let next = #"{"type":"session_update","seq":2,"payload":{"name":"demo","data":{"points":[3]},"config":{"x":"y"},"metadata":{"owner":"ann"}}}"#
        guard case let .applied(second, _) = state.apply(text(next)) else { Issue.record("not applied"); return }
        #expect(second.changedKeys == ["data", "config"])
        #expect(state.session?.config == ["x": "y"])
        #expect(state.counters.sessionUpdatesApplied == 2)
    }

    @Test("a known key with the expected type is applied")
    func knownKeyApplied() {
        var state = stateWithFullState()
        let outcome = state.apply(text(#"{"type":"config_update","seq":2,"payload":{"speed":2.5,"mode":"ramp"}}"#))
        guard case let .applied(change, rejected) = outcome else { Issue.record("\(outcome)"); return }
        #expect(change.changedKeys == ["speed", "mode"])
        #expect(change.seq == 2)
        #expect(rejected.isEmpty)
        #expect(state.session?.config["speed"] == .double(2.5))
        #expect(state.session?.config["mode"] == "ramp")
        #expect(state.counters.configUpdatesApplied == 1)
        #expect(state.lastSeq == 2)
    }

    @Test("an unknown key is dropped and counted; the known keys beside it still apply")
    func unknownKeyDropped() {
        var state = stateWithFullState()
        let outcome = state.apply(text(#"{"type":"config_update","payload":{"speed":3,"evil":"rm -rf"}}"#))
        guard case let .applied(change, rejected) = outcome else { Issue.record("\(outcome)"); return }
        #expect(change.changedKeys == ["speed"])
        #expect(change.seq == nil)
        #expect(rejected == [FieldSchema.Rejection(key: "evil", reason: .unknownField)])
        #expect(state.session?.config["evil"] == nil)
        #expect(state.counters.rejectedFields == 1)
    }

    @Test("a value of the wrong type is dropped and counted", arguments: [
        #"{"speed":"fast"}"#, #"{"mode":3}"#, #"{"debug":"yes"}"#, #"{"limits":[1]}"#, #"{"tags":{"a":1}}"#,
        #"{"speed":null}"#,
    ])
    func wrongTypeDropped(_ payload: String) {
        var state = stateWithFullState()
        let before = state.session
        let outcome = state.apply(text(#"{"type":"config_update","payload":\#(payload)}"#))
        guard case let .dropped(.nothingAccepted(rejected)) = outcome else { Issue.record("\(outcome)"); return }
        #expect(rejected.count == 1)
        #expect(state.session == before)
        #expect(state.counters.rejectedFields == 1)
        #expect(state.counters.configUpdatesRejected == 1)
    }

    @Test("a derived schema types every number as number: 1 accepts 2.5, 1.5 accepts 7")
    func derivedNumbersAreNumbers() {
        var state = ViewerState()
        _ = state.apply(text(#"{"type":"session_update","payload":{"name":"n","config":{"a":1,"b":1.5}}}"#))
        #expect(state.activeSchema?.fields["a"] == .number)
        let outcome = state.apply(text(#"{"type":"config_update","payload":{"a":2.5,"b":7}}"#))
        guard case let .applied(change, _) = outcome else { Issue.record("\(outcome)"); return }
        #expect(change.changedKeys == ["a", "b"])
    }

    @Test("the derived schema follows the last full state, not the merged config_updates")
    func derivedFromLastFullState() {
        var state = stateWithFullState()
        // A new full state without "speed" and with "volume": the whitelist follows it.
        _ = state.apply(text(#"{"type":"session_update","seq":5,"payload":{"name":"demo","config":{"volume":0.5}}}"#))
        #expect(state.activeSchema == FieldSchema(["volume": .number]))
        let outcome = state.apply(text(#"{"type":"config_update","payload":{"speed":2,"volume":0.75}}"#))
        guard case let .applied(change, rejected) = outcome else { Issue.record("\(outcome)"); return }
        #expect(change.changedKeys == ["volume"])
        #expect(rejected.map(\.key) == ["speed"])
    }

    @Test("a key whose value was null in the full state accepts any value")
    func nullKeyIsUntyped() {
        var state = stateWithFullState()
        guard case .applied = state.apply(text(#"{"type":"config_update","payload":{"note":"hello"}}"#)) else {
            Issue.record("not applied")
            return
        }
        #expect(state.session?.config["note"] == "hello")
    }

    @Test("an explicit schema wins over the full state's config")
    func explicitSchemaWins() throws {
        let schema = try FieldSchema(fieldSpecs: ["speed:integer", "extra:string"])
        var state = stateWithFullState(schema: schema)
        let outcome = state.apply(text(#"{"type":"config_update","payload":{"speed":2.5,"mode":"x","extra":"ok"}}"#))
        guard case let .applied(change, rejected) = outcome else { Issue.record("\(outcome)"); return }
        #expect(change.changedKeys == ["extra"])
        #expect(Set(rejected.map(\.key)) == ["speed", "mode"])
        #expect(state.counters.rejectedFields == 2)
        #expect(state.activeSchema == schema)
    }

    @Test("config_update before any full state is ignored and counted")
    func configUpdateBeforeState() {
        var state = ViewerState()
        #expect(state.apply(text(#"{"type":"config_update","payload":{"speed":2}}"#)) == .dropped(.configUpdateBeforeState))
        #expect(state.session == nil)
        #expect(state.counters.configUpdatesBeforeState == 1)
        // Also with an explicit schema: there is nothing to merge into.
        var withSchema = ViewerState(schema: FieldSchema(["speed": .number]))
        #expect(withSchema.apply(text(#"{"type":"config_update","payload":{"speed":2}}"#)) == .dropped(.configUpdateBeforeState))
    }

    @Test("binary, malformed, invalid and unknown messages are dropped and counted, never fatal")
    func hostileMessagesCounted() {
        var state = stateWithFullState()
        let before = state.session
        let frames: [IncomingFrame] = [
            .binary(byteCount: 12),
            text("not json"),
            text("{\"type\":"),
            text("[1,2,3]"),
            text(#"{"payload":{}}"#),
            text(#"{"type":"session_update","payload":{"data":1}}"#),
            text(#"{"type":"config_update","payload":[1]}"#),
            text(#"{"type":"config_update","seq":"x","payload":{}}"#),
            text(#"{"type":"mystery","payload":{"speed":99}}"#),
            text(#"{"type":"hello"}"#),
            .oversized(byteCount: 1 << 25),
        ]
        for frame in frames {
            guard case .dropped = state.apply(frame) else { Issue.record("applied \(frame)"); continue }
        }
        #expect(state.session == before)
        let counters = state.counters
        #expect(counters.binaryMessagesDropped == 1)
        #expect(counters.malformedMessagesDropped == 7)
        #expect(counters.unknownTypesDropped == 2)
        #expect(counters.oversizedMessagesDropped == 1)
        #expect(counters.messagesReceived == 12)
        #expect(counters.messagesDropped == 11)
    }

    @Test("extra envelope members are ignored; envelopes without seq apply")
    func lenientEnvelope() {
        var state = ViewerState()
        let outcome = state.apply(text(#"{"payload":{"name":"n","config":{"k":1}},"future":true,"type":"session_update"}"#))
        guard case let .applied(change, _) = outcome else { Issue.record("\(outcome)"); return }
        #expect(change.seq == nil)
        #expect(state.lastSeq == nil)
    }

    @Test("the resume query names the last applied seq and the epoch of the last full state")
    func resumeQuery() {
        var state = ViewerState()
        #expect(state.resumeQuery == nil)
        _ = state.apply(text(#"{"type":"session_update","seq":100,"epoch":"9f2c0b1e77a4d310","payload":{"name":"n","config":{"a":1}}}"#))
        #expect(state.resumeQuery == "since=100&epoch=9f2c0b1e77a4d310")
        _ = state.apply(text(#"{"type":"config_update","seq":101,"payload":{"a":2}}"#))
        #expect(state.resumeQuery == "since=101&epoch=9f2c0b1e77a4d310")
        _ = state.apply(text(#"{"type":"session_update","seq":7,"epoch":"a b&c","payload":{"name":"n"}}"#))
        #expect(state.resumeQuery == "since=7&epoch=a%20b%26c")
        // A full state without an epoch (an older or foreign host): no resume.
        _ = state.apply(text(#"{"type":"session_update","seq":8,"payload":{"name":"n"}}"#))
        #expect(state.resumeQuery == nil)
    }

    @Test("the json-lines form carries seq, type, changed and state")
    func changeJSON() throws {
        var state = stateWithFullState()
        guard case let .applied(change, _) = state.apply(text(#"{"type":"config_update","seq":9,"payload":{"speed":4}}"#)) else {
            Issue.record("not applied")
            return
        }
        let json = change.json
        guard case let .object(members) = json else { Issue.record("not an object"); return }
        #expect(Array(members.keys) == ["seq", "type", "changed", "state"])
        #expect(members["seq"] == 9)
        #expect(members["changed"] == ["speed"])
        #expect(try Session(json: members["state"]!) == state.session)
    }
}
