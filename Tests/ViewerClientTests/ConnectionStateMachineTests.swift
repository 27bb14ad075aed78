import Testing
@testable import ViewerClient

@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine

    func machine(jitter: Double = 0) -> Machine {
        Machine(backoff: ReconnectBackoff(jitter: jitter), random: SeededRandom(seed: 3))
    }

    func connected() -> Machine {
        var machine = machine()
        _ = machine.handle(.connectRequested)
        _ = machine.handle(.established)
        return machine
    }

    @Test("connect → connecting → connected")
    func connects() {
        var machine = machine()
        #expect(machine.state == .disconnected)
        #expect(machine.handle(.connectRequested) == .openConnection)
        #expect(machine.state == .connecting)
        #expect(machine.handle(.established) == .none)
        #expect(machine.state == .connected)
    }

    @Test("every unintended loss of the connection leads to reconnecting after 2 s", arguments: [
        Machine.Event.closed(code: 1001),
        .closed(code: nil),
        .closed(code: 1000),
        .closed(code: 1011),
        .connectionError(reason: "connection refused"),
        .pingTimeout,
    ])
    func unintendedCloseReconnects(_ event: Machine.Event) {
        var machine = connected()
        #expect(machine.handle(event) == .scheduleReconnect(attempt: 1, after: .seconds(2)))
        #expect(machine.state == .reconnecting(attempt: 1, delay: .seconds(2)))
        #expect(machine.handle(.reconnectTimerFired(attempt: 1)) == .openConnection)
        #expect(machine.state == .connecting)
    }

    @Test("a refused connection, a failed handshake or an HTTP 503 while connecting also retries", arguments: [
        Machine.Event.connectionError(reason: "connection refused"),
        .connectionError(reason: "HS: ACCEPT missing"),
        .handshakeRejected(httpStatus: 503),
        .handshakeRejected(httpStatus: 404),
        .closed(code: nil),
    ])
    func failedAttemptRetries(_ event: Machine.Event) {
        var machine = machine()
        _ = machine.handle(.connectRequested)
        #expect(machine.handle(event) == .scheduleReconnect(attempt: 1, after: .seconds(2)))
    }

    @Test("failed attempts follow the schedule; success resets it")
    func scheduleAcrossFailuresAndReset() {
        var machine = connected()
        var delays: [Duration] = []
        var action = machine.handle(.closed(code: 1001))
        for _ in 0..<7 {
            guard case let .scheduleReconnect(attempt, delay) = action else {
                Issue.record("expected a reconnect, got \(action)")
                return
            }
            delays.append(delay)
            #expect(machine.handle(.reconnectTimerFired(attempt: attempt)) == .openConnection)
            action = machine.handle(.connectionError(reason: "connection refused"))
        }
        #expect(delays == [
            .seconds(2), .seconds(3), .milliseconds(4500), .milliseconds(6750),
            .milliseconds(10125), .seconds(15), .seconds(15),
        ])
        // Connect successfully, lose it again: back to 2 s.
        guard case let .scheduleReconnect(attempt, _) = action else { Issue.record("no reconnect"); return }
        _ = machine.handle(.reconnectTimerFired(attempt: attempt))
        _ = machine.handle(.established)
        #expect(machine.handle(.closed(code: nil)) == .scheduleReconnect(attempt: 1, after: .seconds(2)))
    }

    @Test("an intentional disconnect sends close 1000 and never schedules a reconnect")
    func intentionalCloseNeverReconnects() {
        var machine = connected()
        #expect(machine.handle(.disconnectRequested) == .sendClose(code: 1000))
        #expect(machine.state == .closing)
        // Whatever the socket does next, nothing reconnects.
        for event in [Machine.Event.closed(code: 1000), .closed(code: nil), .pingTimeout,
                      .connectionError(reason: "x"), .reconnectTimerFired(attempt: 1), .disconnectRequested] {
            let action = machine.handle(event)
            #expect(action == .none)
            #expect(machine.state == .disconnected)
        }
    }

    @Test("disconnect while a reconnect is pending cancels it; the stale timer is ignored")
    func disconnectWhileReconnecting() {
        var machine = connected()
        _ = machine.handle(.closed(code: 1001))
        #expect(machine.handle(.disconnectRequested) == .cancelReconnect)
        #expect(machine.state == .disconnected)
        #expect(machine.handle(.reconnectTimerFired(attempt: 1)) == .none)
        #expect(machine.state == .disconnected)
    }

    @Test("disconnect while connecting closes the attempt, even if it completes afterwards")
    func disconnectWhileConnecting() {
        var machine = machine()
        _ = machine.handle(.connectRequested)
        #expect(machine.handle(.disconnectRequested) == .sendClose(code: 1000))
        #expect(machine.handle(.established) == .sendClose(code: 1000))
        #expect(machine.state == .closing)
        #expect(machine.handle(.closed(code: 1000)) == .none)
        #expect(machine.state == .disconnected)
    }

    @Test("HTTP 401 and 403 are final: not authorized, no retry", arguments: [401, 403])
    func notAuthorizedIsFinal(_ status: Int) {
        var machine = machine()
        _ = machine.handle(.connectRequested)
        #expect(machine.handle(.handshakeRejected(httpStatus: status)) == .notifyNotAuthorized(httpStatus: status))
        #expect(machine.state == .notAuthorized(httpStatus: status))
        for event in [Machine.Event.closed(code: nil), .connectionError(reason: "x"), .connectRequested,
                      .reconnectTimerFired(attempt: 1), .disconnectRequested] {
            #expect(machine.handle(event) == .none)
        }
        #expect(machine.state == .notAuthorized(httpStatus: status))
    }

    @Test("a timer from an earlier attempt does not open a connection")
    func staleTimerIgnored() {
        var machine = connected()
        _ = machine.handle(.closed(code: nil))
        #expect(machine.handle(.reconnectTimerFired(attempt: 2)) == .none)
        #expect(machine.state == .reconnecting(attempt: 1, delay: .seconds(2)))
    }

    @Test("repeated connect requests open only one connection")
    func connectIsIdempotent() {
        var machine = machine()
        #expect(machine.handle(.connectRequested) == .openConnection)
        #expect(machine.handle(.connectRequested) == .none)
        _ = machine.handle(.established)
        #expect(machine.handle(.connectRequested) == .none)
    }

    @Test("with jitter the reconnect delay stays inside its bound")
    func jitteredReconnect() {
        var machine = machine(jitter: 0.2)
        _ = machine.handle(.connectRequested)
        for failure in 0..<10 {
            let action = machine.handle(.connectionError(reason: "refused"))
            guard case let .scheduleReconnect(attempt, delay) = action else { Issue.record("\(action)"); return }
            #expect(ReconnectBackoff().bounds(forFailure: failure).contains(delay))
            _ = machine.handle(.reconnectTimerFired(attempt: attempt))
        }
    }
}
