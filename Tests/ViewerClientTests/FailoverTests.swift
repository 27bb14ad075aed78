import Clocks
import Envelope
import Logging
import Synchronization
import Testing
@testable import ViewerClient

@Suite("Failover schedule")
struct FailoverScheduleTests {
    @Test("one URL: every failure is a whole round, so every failure waits on the backoff")
    func singleURLAlwaysBacksOff() {
        var failover = FailoverSchedule(count: 1)
        #expect(failover.failed() == true)
        #expect(failover.failed() == true)
        #expect(failover.current == 0)
    }

    @Test("three URLs: round-robin, the backoff only after all three failed in a row")
    func roundRobinWithBackoffPerRound() {
        var failover = FailoverSchedule(count: 3)
        var steps: [(Int, Bool)] = []
        for _ in 0..<6 {
            let backoff = failover.failed()
            steps.append((failover.current, backoff))
        }
        #expect(steps.map(\.0) == [1, 2, 0, 1, 2, 0])
        #expect(steps.map(\.1) == [false, false, true, false, false, true])
    }

    @Test("a success restarts the count on the URL that worked")
    func successRestartsTheRound() {
        var failover = FailoverSchedule(count: 2)
        failover.failed()                 // 0 failed → 1
        failover.succeeded()              // 1 works
        #expect(failover.current == 1)
        #expect(failover.failed() == false)   // 1 lost → 0 at once
        #expect(failover.current == 0)
        #expect(failover.failed() == true)    // 0 refused too: whole round
    }

    @Test("the start index is clamped into range", arguments: [(-3, 0), (0, 0), (1, 1), (7, 1)])
    func startIsClamped(start: Int, expected: Int) {
        #expect(FailoverSchedule(count: 2, start: start).current == expected)
    }
}

@Suite("Connection state machine with several URLs")
struct FailoverMachineTests {
    typealias Machine = ConnectionStateMachine

    func connected(endpoints: Int) -> Machine {
        var machine = Machine(backoff: ReconnectBackoff(jitter: 0), random: SeededRandom(seed: 1),
                              endpoints: endpoints, failoverDelay: .milliseconds(250))
        _ = machine.handle(.connectRequested)
        _ = machine.handle(.established)
        return machine
    }

    @Test("a lost connection moves to the next URL after the failover delay, then backs off after a whole round")
    func failsOverThenBacksOff() {
        var machine = connected(endpoints: 2)
        #expect(machine.endpoint == 0)
        #expect(machine.handle(.closed(code: nil)) == .scheduleReconnect(attempt: 1, after: .milliseconds(250)))
        #expect(machine.endpoint == 1)
        #expect(machine.handle(.reconnectTimerFired(attempt: 1)) == .openConnection)
        // The second URL refuses as well: both failed, so the backoff's first delay.
        #expect(machine.handle(.connectionError(reason: "refused")) == .scheduleReconnect(attempt: 2, after: .seconds(2)))
        #expect(machine.endpoint == 0)
        _ = machine.handle(.reconnectTimerFired(attempt: 2))
        #expect(machine.handle(.connectionError(reason: "refused")) == .scheduleReconnect(attempt: 3, after: .milliseconds(250)))
        _ = machine.handle(.reconnectTimerFired(attempt: 3))
        #expect(machine.handle(.connectionError(reason: "refused")) == .scheduleReconnect(attempt: 4, after: .seconds(3)))
    }

    @Test("after a success on the second URL the viewer stays there, and a later loss fails over quickly again")
    func staysWhereItWorks() {
        var machine = connected(endpoints: 2)
        _ = machine.handle(.pingTimeout)
        _ = machine.handle(.reconnectTimerFired(attempt: 1))
        #expect(machine.handle(.established) == .none)
        #expect(machine.state == .connected)
        #expect(machine.endpoint == 1)
        #expect(machine.handle(.closed(code: 1001)) == .scheduleReconnect(attempt: 1, after: .milliseconds(250)))
        #expect(machine.endpoint == 0)
    }

    @Test("the failover delay is jittered like the backoff, within ±jitter")
    func failoverDelayIsJittered() {
        for seed in UInt64(1)...20 {
            var machine = Machine(backoff: ReconnectBackoff(jitter: 0.2), random: SeededRandom(seed: seed),
                                  endpoints: 3, failoverDelay: .milliseconds(500))
            _ = machine.handle(.connectRequested)
            _ = machine.handle(.established)
            guard case let .scheduleReconnect(_, delay) = machine.handle(.closed(code: 1006)) else {
                Issue.record("no reconnect")
                return
            }
            #expect(delay >= .milliseconds(400) && delay <= .milliseconds(600), "seed \(seed): \(delay)")
        }
    }

    @Test("a 401 on any URL is still final")
    func notAuthorizedIsFinal() {
        var machine = connected(endpoints: 2)
        _ = machine.handle(.closed(code: 1001))
        _ = machine.handle(.reconnectTimerFired(attempt: 1))
        #expect(machine.handle(.handshakeRejected(httpStatus: 401)) == .notifyNotAuthorized(httpStatus: 401))
        #expect(machine.state == .notAuthorized(httpStatus: 401))
    }
}

/// Records which URL and path each connection attempt used.
final class RecordingTransport: ViewerTransport {
    private let record = Mutex<(handler: (@Sendable (TransportEvent) -> Void)?, opens: [String])>((nil, []))

    var opens: [String] { record.withLock { $0.opens } }

    func emit(_ event: TransportEvent) {
        let handler = record.withLock { $0.handler }
        handler?(event)
    }

    func start(handler: @escaping @Sendable (TransportEvent) -> Void) { record.withLock { $0.handler = handler } }
    func open(path: String) { record.withLock { $0.opens.append("?\(path)") } }
    func open(url: ViewerURL, path: String) { record.withLock { $0.opens.append("\(url.host):\(url.port)\(path)") } }
    func close(code: UInt16) { emit(.closed(code: code)) }
    func shutdown() async {}
    func requestStop() {}
}

@Suite("ViewerClient failover", .timeLimit(.minutes(1)))
struct FailoverDriverTests {
    let clock = TestClock()
    let transport = RecordingTransport()
    let viewer: ViewerClient

    init() throws {
        var configuration = ViewerConfiguration()
        configuration.backoff.jitter = 0
        configuration.clock = clock
        configuration.failoverDelay = .milliseconds(100)
        viewer = try ViewerClient(
            urls: [try ViewerURL(parsing: "ws://10.0.0.1:9876/?token=a"), try ViewerURL(parsing: "ws://10.0.0.2:9877/?token=a")],
            configuration: configuration, logger: Logger(label: "test"), transport: transport)
    }

    func text(_ envelope: Envelope) -> TransportEvent { .message(.text(envelope.encoded())) }

    @Test("a viewer whose relay dies opens the next URL after the failover delay and resumes there with since and epoch")
    func failsOverAndResumes() async {
        var states = viewer.states.makeAsyncIterator()
        #expect(await states.next() == .disconnected)
        viewer.start()
        #expect(await states.next() == .connecting)
        transport.emit(.established)
        #expect(await states.next() == .connected)
        transport.emit(text(Envelope(.sessionUpdate(Session(name: "s", config: ["k": 1])), seq: 10, epoch: "e1")))
        transport.emit(text(Envelope(.configUpdate(["k": 2]), seq: 11)))
        #expect(viewer.currentURL.host == "10.0.0.1")

        transport.emit(.closed(code: nil))  // SIGKILLed relay: no close frame
        #expect(await states.next() == .reconnecting(attempt: 1, delay: .milliseconds(100)))
        #expect(viewer.currentURL.host == "10.0.0.2")
        await clock.advance(by: .milliseconds(100))
        #expect(await states.next() == .connecting)
        #expect(transport.opens == ["10.0.0.1:9876/?token=a", "10.0.0.2:9877/?token=a&since=11&epoch=e1"])
    }

    @Test("when both URLs fail the viewer waits the backoff's 2 s before the next round")
    func backsOffAfterAWholeRound() async {
        var states = viewer.states.makeAsyncIterator()
        _ = await states.next()
        viewer.start()
        _ = await states.next()
        transport.emit(.connectionError(reason: "refused", httpStatus: nil))
        #expect(await states.next() == .reconnecting(attempt: 1, delay: .milliseconds(100)))
        await clock.advance(by: .milliseconds(100))
        #expect(await states.next() == .connecting)
        transport.emit(.connectionError(reason: "refused", httpStatus: nil))
        #expect(await states.next() == .reconnecting(attempt: 2, delay: .seconds(2)))
        await clock.advance(by: .milliseconds(1999))
        #expect(transport.opens.count == 2)
        await clock.advance(by: .milliseconds(1))
        #expect(await states.next() == .connecting)
        #expect(transport.opens.map { $0.prefix(8) } == ["10.0.0.1", "10.0.0.2", "10.0.0.1"])
    }

    @Test("an empty URL list is refused with a sentence")
    func emptyListIsRefused() {
        #expect(throws: ViewerError.self) { try ViewerClient(urls: [String]()) }
    }
}
