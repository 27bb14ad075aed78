import Envelope
@testable import HostBroadcaster
import Testing

/// What a relay relays after reading Redis, and what it does with each message.
@Suite("Relay resync plan")
struct RedisRelaySyncTests {
    func state(_ seq: Int64, k: Int, epoch: String = "e") -> Envelope {
        Envelope(.sessionUpdate(Session(name: "s", config: ["k": .int(Int64(k))])), seq: seq, epoch: epoch)
    }

    func config(_ seq: Int64, k: Int) -> Envelope { Envelope(.configUpdate(["k": .int(Int64(k))]), seq: seq) }

    /// base 10, history 11…14, state 14.
    var snapshot: RelaySync.Snapshot {
        RelaySync.Snapshot(state: state(14, k: 14), base: state(10, k: 10),
                           history: [config(11, k: 11), config(12, k: 12), config(13, k: 13), config(14, k: 14)])
    }

    @Test("up to date, or ahead of Redis in the same epoch: nothing (never go back)", arguments: [Int64(14), 20])
    func nothingWhenUpToDate(seq: Int64) {
        #expect(RelaySync.plan(seq: seq, epoch: "e", snapshot: snapshot).isEmpty)
    }

    @Test("behind within the history: only the missed envelopes, in order")
    func missedOnly() {
        #expect(RelaySync.plan(seq: 12, epoch: "e", snapshot: snapshot) == [config(13, k: 13), config(14, k: 14)])
        #expect(RelaySync.plan(seq: 10, epoch: "e", snapshot: snapshot) == snapshot.history)
    }

    @Test("behind the base, or another epoch: the base and the whole history, so the relay's log fills")
    func baseAndHistory() {
        #expect(RelaySync.plan(seq: 3, epoch: "e", snapshot: snapshot) == [state(10, k: 10)] + snapshot.history)
        #expect(RelaySync.plan(seq: 99, epoch: "old", snapshot: snapshot) == [state(10, k: 10)] + snapshot.history)
    }

    @Test("a broken chain (missing base, a hole, a wrong end, another epoch) falls back to the state alone")
    func brokenChainFallsBack() {
        var noBase = snapshot
        noBase.base = nil
        var hole = snapshot
        hole.history.remove(at: 1)
        var short = snapshot
        short.history.removeLast()
        var otherEpochBase = snapshot
        otherEpochBase.base = state(10, k: 10, epoch: "x")
        for broken in [noBase, hole, short, otherEpochBase] {
            #expect(broken.chain == nil)
            #expect(RelaySync.plan(seq: 3, epoch: "e", snapshot: broken) == [state(14, k: 14)])
        }
        #expect(RelaySync.plan(seq: 13, epoch: "e", snapshot: noBase) == [state(14, k: 14)])
    }

    @Test("an empty history with the base equal to the state is a valid chain")
    func emptyHistory() {
        let fresh = RelaySync.Snapshot(state: state(5, k: 5), base: state(5, k: 5), history: [])
        #expect(fresh.chain != nil)
        #expect(RelaySync.plan(seq: 1, epoch: "old", snapshot: fresh) == [state(5, k: 5)])
    }

    @Test("messages: the next seq is relayed, older ones ignored, a gap or a new epoch resyncs")
    func steps() {
        #expect(RelaySync.step(for: config(11, k: 0), seq: 10, epoch: "e") == .relay)
        #expect(RelaySync.step(for: state(11, k: 0), seq: 10, epoch: "e") == .relay)
        #expect(RelaySync.step(for: config(10, k: 0), seq: 10, epoch: "e") == .ignore)
        #expect(RelaySync.step(for: config(7, k: 0), seq: 10, epoch: "e") == .ignore)
        #expect(RelaySync.step(for: state(9, k: 0), seq: 10, epoch: "e") == .ignore)
        #expect(RelaySync.step(for: config(12, k: 0), seq: 10, epoch: "e") == .resync)
        #expect(RelaySync.step(for: state(15, k: 0), seq: 10, epoch: "e") == .resync)
        #expect(RelaySync.step(for: state(3, k: 0, epoch: "f"), seq: 10, epoch: "e") == .resync)
        #expect(RelaySync.step(for: Envelope(.configUpdate([:])), seq: 10, epoch: "e") == .ignore)
        // config_updates carry their epoch too: one of another run is never merged, whatever its seq.
        #expect(RelaySync.step(for: Envelope(.configUpdate(["k": 1]), seq: 11, epoch: "f"), seq: 10, epoch: "e") == .resync)
        #expect(RelaySync.step(for: Envelope(.configUpdate(["k": 1]), seq: 11, epoch: "e"), seq: 10, epoch: "e") == .relay)
    }
}
