import Clocks
import Envelope
@testable import HostBroadcaster
import Synchronization
import Testing

@Suite struct SessionStoreTests {
    final class Sink: Sendable {
        let payloads = Mutex<[Envelope.Payload]>([])
        var all: [Envelope.Payload] { payloads.withLock { $0 } }
    }

    let initial = Session(name: "s", data: ["a": 1], config: ["speed": 1, "mode": "wave"], metadata: [:])

    private func makeStore(interval: Duration = .milliseconds(250)) -> (SessionStore<TestClock<Duration>>, TestClock<Duration>, Sink) {
        let clock = TestClock()
        let sink = Sink()
        let store = SessionStore(
            initial: initial, interval: interval, maxWait: nil, clock: clock,
            publish: { payload in sink.payloads.withLock { $0.append(payload) } },
            startHost: { _ in })
        return (store, clock, sink)
    }

    @Test func configChangeIsSentOnceTheWindowCloses() async {
        let (store, clock, sink) = makeStore()
        store.setConfig("speed", 2)
        await waitForTimer(clock)
        await clock.advance(by: .milliseconds(249))
        // The timer still sleeps on the clock: it has not fired (a timer that fired
        // early would have emitted and left no sleeper; this would then time out).
        await waitForTimer(clock)
        #expect(sink.all.isEmpty)
        await clock.advance(by: .milliseconds(1))
        await settle { !sink.all.isEmpty }
        #expect(sink.all == [.configUpdate(["speed": 2])])
    }

    @Test func aValueWrittenBackInsideTheWindowSendsNothing() async {
        let (store, clock, sink) = makeStore()
        store.setConfig("speed", 2)
        store.setConfig("speed", 1)
        await waitForTimer(clock)
        await clock.advance(by: .seconds(1))
        // The marker: a later change is the first thing published, so the window
        // above (whether or not its timer has run yet) sent nothing.
        store.setConfig("mode", "square")
        await waitForTimer(clock)
        await clock.advance(by: .seconds(1))
        await settle { !sink.all.isEmpty }
        #expect(sink.all == [.configUpdate(["mode": "square"])])
    }

    @Test func burstsCoalesceToTheChangedKeysWithLastValues() async {
        let (store, clock, sink) = makeStore()
        for step in 1...30 { store.setConfig("speed", .int(Int64(step))) }
        store.setConfig("mode", "square")
        await waitForTimer(clock)
        await clock.advance(by: .seconds(1))
        await settle { !sink.all.isEmpty }
        #expect(sink.all == [.configUpdate(["speed": 30, "mode": "square"])])
    }

    @Test func structuralChangeSendsTheWholeState() async {
        let (store, clock, sink) = makeStore()
        store.setConfig("speed", 5)
        store.update { $0.data = ["a": 2] }
        await waitForTimer(clock)
        await clock.advance(by: .seconds(1))
        await settle { !sink.all.isEmpty }
        var expected = initial
        expected.data = ["a": 2]
        expected.config["speed"] = 5
        #expect(sink.all == [.sessionUpdate(expected)])
    }

    @Test func removedKeySendsTheWholeState() async {
        let (store, clock, sink) = makeStore()
        store.update { $0.config.removeValue(forKey: "mode") }
        await waitForTimer(clock)
        await clock.advance(by: .seconds(1))
        await settle { !sink.all.isEmpty }
        #expect(sink.all == [.sessionUpdate(Session(name: "s", data: ["a": 1], config: ["speed": 1], metadata: [:]))])
    }

    @Test func aBurstThatAddsAKeyThenChangesValuesSendsTheWholeState() async {
        let (store, clock, sink) = makeStore()
        store.setConfig("gain", 1)          // a new key: viewers' derived whitelists do not know it
        store.setConfig("gain", 2)          // then only values change
        store.setConfig("speed", 3)
        await waitForTimer(clock)
        await clock.advance(by: .seconds(1))
        await settle { !sink.all.isEmpty }
        #expect(sink.all == [.sessionUpdate(Session(name: "s", data: ["a": 1], config: ["speed": 3, "mode": "wave", "gain": 2], metadata: [:]))])
    }

    @Test func aValueChangingItsKindSendsTheWholeStateButIntToDoubleDoesNot() {
        let (store, _, sink) = makeStore(interval: .zero)
        store.setConfig("speed", 1.5)       // number → number
        store.setConfig("speed", "loud")    // number → string
        store.update { $0.config["mode"] = .null }   // string → null
        #expect(sink.all.count == 3)
        #expect(sink.all.first == .configUpdate(["speed": 1.5]))
        #expect(sink.all.dropFirst().allSatisfy { if case .sessionUpdate = $0 { true } else { false } })
    }

    @Test func aKeyRemovedAndAddedAgainInLaterWindowsSendsTheWholeStateEachTime() {
        let (store, _, sink) = makeStore(interval: .zero)
        store.update { $0.config.removeValue(forKey: "mode") }
        store.setConfig("mode", "wave")
        #expect(sink.all.count == 2)
        #expect(sink.all.allSatisfy { if case .sessionUpdate = $0 { true } else { false } })
        #expect(store.session == initial)
    }

    @Test func broadcastingAConfigUpdateThatAddsAKeySendsTheWholeState() {
        let session = Session(name: "s", config: ["speed": 1])
        #expect(HostShared.classified(.configUpdate(["speed": 2]), over: session) == .configUpdate(["speed": 2]))
        #expect(HostShared.classified(.configUpdate(["speed": 2.5]), over: session) == .configUpdate(["speed": 2.5]))
        #expect(HostShared.classified(.configUpdate(["gain": 1]), over: session)
            == .sessionUpdate(Session(name: "s", config: ["speed": 1, "gain": 1])))
        #expect(HostShared.classified(.configUpdate(["speed": "fast"]), over: session)
            == .sessionUpdate(Session(name: "s", config: ["speed": "fast"])))
    }

    @Test func zeroIntervalSendsEveryChangeAtOnce() {
        let (store, _, sink) = makeStore(interval: .zero)
        store.setConfig("speed", 2)
        store.setConfig("speed", 3)
        #expect(sink.all == [.configUpdate(["speed": 2]), .configUpdate(["speed": 3])])
    }

    @Test func flushSendsWithoutWaiting() async {
        let (store, clock, sink) = makeStore()
        store.setConfig("speed", 9)
        store.flush()
        #expect(sink.all == [.configUpdate(["speed": 9])])
        await clock.advance(by: .seconds(1))
        // The marker: the next change comes right after the flushed one, nothing in between.
        store.setConfig("mode", "square")
        await waitForTimer(clock)
        await clock.advance(by: .seconds(1))
        await settle { sink.all.count >= 2 }
        #expect(sink.all == [.configUpdate(["speed": 9]), .configUpdate(["mode": "square"])])
    }

    @Test func sessionShowsPendingChanges() {
        let (store, _, _) = makeStore()
        store.setConfig("speed", 4)
        #expect(store.session.config["speed"] == 4)
    }

    /// Yields until `done` holds (the debouncer's timer task runs after the test
    /// clock moved); real time only bounds a broken test, at 10 s.
    private func settle(_ done: () async -> Bool) async {
        let wall = ContinuousClock()
        let giveUp = wall.now.advanced(by: .seconds(10))
        while !(await done()), wall.now < giveUp { await Task.yield() }
    }

    /// Waits until the debouncer's timer sleeps on `clock`, so advancing it wakes
    /// the timer at its deadline rather than before the timer registered.
    private func waitForTimer(_ clock: TestClock<Duration>) async {
        await settle { (try? await clock.checkSuspension()) == nil }
    }
}
