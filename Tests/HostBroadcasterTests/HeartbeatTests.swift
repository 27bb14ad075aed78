@testable import HostBroadcaster
import Testing

@Suite struct HeartbeatTests {
    let policy = Heartbeat(pingInterval: .seconds(30), timeout: .seconds(60))
    let second: Int64 = 1_000_000

    @Test func quietViewerIsLeftAlone() {
        #expect(policy.action(now: 29 * second, lastHeard: 0, lastPing: nil) == .none)
    }

    @Test func viewerSilentForTheIntervalIsPinged() {
        #expect(policy.action(now: 30 * second, lastHeard: 0, lastPing: nil) == .ping)
    }

    @Test func pingIsNotRepeatedWithinTheInterval() {
        #expect(policy.action(now: 45 * second, lastHeard: 0, lastPing: 30 * second) == .none)
        #expect(policy.action(now: 59 * second, lastHeard: 0, lastPing: 30 * second) == .none)
        let often = Heartbeat(pingInterval: .seconds(10), timeout: .seconds(60))
        #expect(often.action(now: 15 * second, lastHeard: 0, lastPing: 10 * second) == .none)
        #expect(often.action(now: 20 * second, lastHeard: 0, lastPing: 10 * second) == .ping)
    }

    @Test func viewerSilentForTheTimeoutIsHungUpOn() {
        #expect(policy.action(now: 60 * second, lastHeard: 0, lastPing: 30 * second) == .hangUp)
    }

    @Test func sseViewerWhoseOutputDrainsIsLeftAlone() {
        #expect(policy.sseAction(now: 500 * second, waitingSince: nil) == .none)
        #expect(policy.sseAction(now: 59 * second, waitingSince: 0) == .none)
    }

    @Test func sseViewerWhoseOutputIsStuckForTheTimeoutIsHungUpOn() {
        #expect(policy.sseAction(now: 60 * second, waitingSince: 0) == .hangUp)
        #expect(policy.sseAction(now: 100 * second, waitingSince: 40 * second) == .hangUp)
        #expect(policy.sseAction(now: 100 * second, waitingSince: 40 * second + 1) == .none)
    }

    @Test func answeringResetsTheClock() {
        #expect(policy.action(now: 61 * second, lastHeard: 40 * second, lastPing: nil) == .none)
    }

    @Test func sweepIntervalIsAQuarterOfThePingIntervalWithinBounds() {
        #expect(policy.sweepIntervalMicros == 5 * second)
        #expect(Heartbeat(pingInterval: .seconds(1), timeout: .seconds(2)).sweepIntervalMicros == 250_000)
        #expect(Heartbeat(pingInterval: .milliseconds(100), timeout: .seconds(2)).sweepIntervalMicros == 100_000)
    }

    /// SPEC §3: "defaults around 30 s / 60 s"; the SSE keepalive comment every 30 s.
    /// Times are given, not read from a clock, so the exact boundaries are checked.
    @Test func aDefaultHostPingsAt30sHangsUpAt60sAndKeepsEventStreamsAliveEvery30s() {
        let host = Heartbeat(HostConfiguration())
        #expect(host.action(now: 30 * second - 1, lastHeard: 0, lastPing: nil) == .none)
        #expect(host.action(now: 30 * second, lastHeard: 0, lastPing: nil) == .ping)
        #expect(host.action(now: 60 * second - 1, lastHeard: 0, lastPing: 30 * second) == .none)
        #expect(host.action(now: 60 * second, lastHeard: 0, lastPing: 30 * second) == .hangUp)
        #expect(!host.sseKeepaliveDue(now: 30 * second - 1, lastWrite: 0))
        #expect(host.sseKeepaliveDue(now: 30 * second, lastWrite: 0))
        #expect(!host.sseKeepaliveDue(now: 45 * second, lastWrite: 20 * second), "a write restarts the keepalive clock")
        #expect(host.sweepIntervalMicros == 5 * second)
    }

    @Test func aShortKeepaliveIntervalMakesTheSweepOftenEnough() {
        var configuration = HostConfiguration()
        configuration.sseKeepaliveInterval = .milliseconds(500)
        let host = Heartbeat(configuration)
        #expect(host.sweepIntervalMicros == 125_000)
        #expect(host.sseKeepaliveDue(now: 500_000, lastWrite: 0))
        #expect(!host.sseKeepaliveDue(now: 499_999, lastWrite: 0))
    }

    @Test func timeoutIsAlwaysLongerThanTheInterval() {
        let odd = Heartbeat(pingInterval: .seconds(10), timeout: .seconds(5))
        #expect(odd.timeoutMicros > odd.pingIntervalMicros)
    }
}
