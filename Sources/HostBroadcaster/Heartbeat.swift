/// When to ping a viewer and when to give up on it: a pure policy, no clock.
///
/// The host runs one sweep over all viewers every ``sweepInterval`` instead of
/// libwebsockets' per-connection validity timers (LWS-NOTES: those cost ~29 %
/// CPU at 10 000 viewers). Times are microseconds on any monotonic clock.
struct Heartbeat: Sendable, Equatable {
    let pingIntervalMicros: Int64
    let timeoutMicros: Int64

    init(pingInterval: Duration, timeout: Duration) {
        pingIntervalMicros = max(1, Heartbeat.micros(pingInterval))
        timeoutMicros = max(pingIntervalMicros + 1, Heartbeat.micros(timeout))
    }

    enum Action: Equatable { case none, ping, hangUp }

    /// The decision for one viewer at `now`, given when it was last heard from
    /// and when it was last pinged (nil: not since it last spoke).
    func action(now: Int64, lastHeard: Int64, lastPing: Int64?) -> Action {
        let silent = now - lastHeard
        if silent >= timeoutMicros { return .hangUp }
        if silent >= pingIntervalMicros {
            if let lastPing, now - lastPing < pingIntervalMicros { return .none }
            return .ping
        }
        return .none
    }

    /// The decision for one Server-Sent Events viewer at `now`, which cannot
    /// answer pings: its liveness is whether its output drains. `waitingSince`
    /// is since when the host has been waiting to write to it with its socket
    /// full (nil: nothing is waiting; a socket with room again restarts the
    /// wait, so a slow reader that still drains is kept). Output stuck for the
    /// ping timeout hangs it up, like a WebSocket viewer silent for that long.
    func sseAction(now: Int64, waitingSince: Int64?) -> Action {
        guard let waitingSince, now - waitingSince >= timeoutMicros else { return .none }
        return .hangUp
    }

    /// How often to sweep: a quarter of the ping interval, between 100 ms and 5 s.
    var sweepIntervalMicros: Int64 {
        min(5_000_000, max(100_000, pingIntervalMicros / 4))
    }

    static func micros(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
