import Debounce
import Envelope
import Testing

@Suite("SessionChange merging and diffing")
struct SessionChangeTests {
    @Test func configMergeKeepsLastValueAndAccumulatesKeys() {
        var change = SessionChange.config(["speed": .double(1.0), "mode": .string("wave")])
        change.merge(.config(["speed": .double(1.5), "size": .int(3)]))
        change.merge(.config(["speed": .double(2.5)]))

        #expect(change == .config(["speed": .double(2.5), "mode": .string("wave"), "size": .int(3)]))
        guard case .config(let values) = change else {
            Issue.record("expected a config change, got \(change)")
            return
        }
        // First-seen order: keys keep their place, new keys go last.
        #expect(Array(values.keys) == ["speed", "mode", "size"])
    }

    @Test func fullAbsorbsEverything() {
        #expect(SessionChange.config(["a": .int(1)]).merging(.full) == .full)
        #expect(SessionChange.full.merging(.config(["a": .int(1)])) == .full)
        #expect(SessionChange.full.merging(.full) == .full)
    }

    @Test func mergingLeavesTheOriginalAlone() {
        let original = SessionChange.config(["a": .int(1)])
        let merged = original.merging(.config(["a": .int(2)]))
        #expect(original == .config(["a": .int(1)]))
        #expect(merged == .config(["a": .int(2)]))
    }

    @Test func equalityIgnoresKeyOrderButNotValues() {
        #expect(SessionChange.config(["a": .int(1), "b": .int(2)]) == .config(["b": .int(2), "a": .int(1)]))
        #expect(SessionChange.config(["a": .int(1)]) == .config(["a": .double(1.0)]))
        #expect(SessionChange.config(["a": .int(1)]) != .config(["a": .int(2)]))
        #expect(SessionChange.config(["a": .int(1)]) != .config(["a": .int(1), "b": .null]))
        #expect(SessionChange.config([:]) != .full)
    }

    @Test func emptiness() {
        #expect(SessionChange.config([:]).isEmpty)
        #expect(!SessionChange.config(["a": .null]).isEmpty)
        #expect(!SessionChange.full.isEmpty)
    }

    // MARK: Diff

    private let base = Session(
        name: "demo",
        data: .object(["items": .array([.int(1), .int(2)])]),
        config: ["speed": .double(1.5), "mode": .string("wave")],
        metadata: ["owner": .string("ana"), "rev": .int(1)]
    )

    @Test func sameStateIsNoChange() {
        #expect(SessionChange(from: base, to: base) == nil)
        var reordered = base
        reordered.metadata = ["rev": .int(1), "owner": .string("ana")]
        reordered.config = ["mode": .string("wave"), "speed": .double(1.5)]
        #expect(SessionChange(from: base, to: reordered) == nil)
    }

    @Test func changedConfigKeysGiveConfig() {
        var new = base
        new.config["speed"] = .double(2)
        new.config["mode"] = .string("pulse")
        #expect(SessionChange(from: base, to: new) == .config(["speed": .double(2), "mode": .string("pulse")]))
    }

    @Test func addedConfigKeyOrChangedKindGivesFull() {
        var added = base
        added.config["speed"] = .double(2)
        added.config["fresh"] = .bool(true)
        #expect(SessionChange(from: base, to: added) == .full)
        var retyped = base
        retyped.config["speed"] = .string("fast")
        #expect(SessionChange(from: base, to: retyped) == .full)
    }

    @Test func removedConfigKeyGivesFull() {
        var new = base
        new.config["mode"] = nil
        #expect(SessionChange(from: base, to: new) == .full)
    }

    @Test(arguments: ["name", "data", "metadata"])
    func structuralChangeGivesFull(member: String) {
        var new = base
        new.config["speed"] = .double(9)  // a config change alongside does not matter
        switch member {
        case "name": new.name = "other"
        case "data": new.data = .object(["items": .array([.int(1)])])
        default: new.metadata["rev"] = .int(2)
        }
        #expect(SessionChange(from: base, to: new) == .full)
    }
}
