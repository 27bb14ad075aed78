import Envelope
import Testing

@Suite("Change classification (SPEC §2)")
struct SessionDiffTests {
    static let base = Session(
        name: "demo",
        data: ["points": [1, 2]],
        config: ["speed": 1.5, "mode": "wave", "on": true],
        metadata: ["owner": "ana"]
    )

    @Test("writing the same values again is nothing")
    func sameValues() {
        var same = Self.base
        same.config["speed"] = 1.5
        same.data = ["points": [1.0, 2]]
        #expect(SessionDiff(from: Self.base, to: same) == .nothing)
    }

    @Test("reordering keys is nothing")
    func reorderedKeys() {
        var reordered = Self.base
        reordered.config = ["on": true, "mode": "wave", "speed": 1.5]
        #expect(SessionDiff(from: Self.base, to: reordered) == .nothing)
    }

    @Test("one config key changed is a config_update with exactly that key")
    func oneConfigKey() {
        var changed = Self.base
        changed.config["mode"] = "pulse"
        let diff = SessionDiff(from: Self.base, to: changed)
        #expect(diff == .configUpdate(["mode": "pulse"]))
        guard case let .configUpdate(keys) = diff else { return }
        #expect(Array(keys.keys) == ["mode"])
    }

    @Test("several config keys changed, in the new config's order")
    func severalConfigKeys() {
        var changed = Self.base
        changed.config["on"] = false
        changed.config["speed"] = 2
        guard case let .configUpdate(keys) = SessionDiff(from: Self.base, to: changed) else {
            Issue.record("expected a config update")
            return
        }
        #expect(Array(keys.keys) == ["speed", "on"])
        #expect(keys["speed"] == 2)
        #expect(keys["on"] == false)
    }

    @Test("an added config key is a session_update (a derived whitelist would reject it)")
    func addedConfigKey() {
        var changed = Self.base
        changed.config["color"] = "red"
        #expect(SessionDiff(from: Self.base, to: changed) == .sessionUpdate(changed))
    }

    /// One config key `k` going from `before` to `after` (nil: absent), and what must be sent.
    static let configCases: [(before: JSONValue?, after: JSONValue?, expected: String)] = [
        (1, 2, "config"),                  // same kind, new value
        (1, 2.5, "config"),                // int → double: both "number", not a kind change
        (2.5, 3, "config"),
        (1, 1.0, "nothing"),               // JSON-equal
        ("a", "b", "config"),
        (true, false, "config"),
        (["x": 1], ["x": 2], "config"),
        ([1], [1, 2], "config"),
        (1, "loud", "session"),            // number → string
        (.null, 1, "session"),             // null → value is a kind change
        (1, .null, "session"),             // value → null too
        (true, 1, "session"),
        ([1], ["x": 1], "session"),        // array → object
        (nil, 1, "session"),               // added
        (1, nil, "session"),               // removed
        (nil, nil, "nothing"),
    ]

    @Test("one classifier: value changes are config_updates, kind and key-set changes session_updates",
          arguments: configCases.indices)
    func classificationTable(_ index: Int) {
        let (before, after, expected) = Self.configCases[index]
        var old = Self.base
        old.config["k"] = before
        var new = Self.base
        new.config["k"] = after
        let keyChange: SessionDiff.KeyChange = expected == "nothing" ? .unchanged : expected == "config" ? .value : .shape
        #expect(SessionDiff.keyChange(from: before, to: after) == keyChange)
        for diff in [SessionDiff(from: old, to: new), SessionDiff(from: old, to: new, changedConfigKeys: ["k"])] {
            switch (expected, diff) {
            case ("nothing", .nothing): break
            case ("config", .configUpdate(let changes)): #expect(JSONValue.object(changes) == .object(["k": after!]))
            case ("session", .sessionUpdate(let session)): #expect(session == new)
            default: Issue.record("\(String(describing: before)) → \(String(describing: after)): expected \(expected), got \(diff)")
            }
        }
    }

    @Test("the keyed form lists changes in the new config's order, whatever order the keys come in")
    func keyedFormKeepsConfigOrder() {
        var changed = Self.base
        changed.config["on"] = false
        changed.config["speed"] = 2
        guard case let .configUpdate(keys) = SessionDiff(from: Self.base, to: changed, changedConfigKeys: ["on", "speed"]) else {
            Issue.record("expected a config update")
            return
        }
        #expect(Array(keys.keys) == ["speed", "on"])
    }

    @Test("a removed config key is a session_update")
    func removedConfigKey() {
        var changed = Self.base
        changed.config.removeValue(forKey: "on")
        #expect(SessionDiff(from: Self.base, to: changed) == .sessionUpdate(changed))
    }

    @Test("a name, data or metadata change is a session_update",
          arguments: ["name", "data", "metadata"])
    func structuralChange(_ member: String) {
        var changed = Self.base
        switch member {
        case "name": changed.name = "renamed"
        case "data": changed.data = ["points": [1, 2, 3]]
        default: changed.metadata["owner"] = "bo"
        }
        changed.config["speed"] = 9  // a config change alongside does not make it a config_update
        #expect(SessionDiff(from: Self.base, to: changed) == .sessionUpdate(changed))
    }

    @Test("the diff produces the envelope to send")
    func envelope() {
        var changed = Self.base
        changed.config["speed"] = 3
        let envelope = SessionDiff(from: Self.base, to: changed).envelope(seq: 42)
        #expect(envelope.map { String(decoding: $0.encoded(), as: UTF8.self) }
            == #"{"type":"config_update","seq":42,"payload":{"speed":3}}"#)
        #expect(SessionDiff.nothing.envelope(seq: 1) == nil)
    }
}
