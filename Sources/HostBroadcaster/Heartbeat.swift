/// When to ping a viewer, when to give up on it, and when an idle event
/// stream needs a keepalive comment: a pure policy, no clock.
///
/// The host runs one sweep over all viewers every ``sweepInterval`` instead of
/// libwebsockets' per-connection validity timers (LWS-NOTES: those cost ~29 %
/// CPU at 10 000 viewers). Times are microseconds on any monotonic clock.
struct Heartbeat: Sendable, Equatable {
    let pingIntervalMicros: Int64
    let timeoutMicros: Int64
    /// An SSE stream with nothing written for this long gets `: keepalive` (at least 100 ms).
    let sseKeepaliveMicros: Int64

    init(pingInterval: Duration, timeout: Duration, sseKeepalive: Duration = .seconds(30)) {
        pingIntervalMicros = max(1, Heartbeat.micros(pingInterval))
        timeoutMicros = max(pingIntervalMicros + 1, Heartbeat.micros(timeout))
        sseKeepaliveMicros = max(100_000, Heartbeat.micros(sseKeepalive))
    }

    /// The policy a host with `configuration` follows.
    init(_ configuration: HostConfiguration) {
        self.init(pingInterval: configuration.pingInterval, timeout: configuration.pingTimeout,
                  sseKeepalive: configuration.sseKeepaliveInterval)
    }

    /// Whether an SSE stream last written to at `lastWrite` needs a keepalive at `now`.
    func sseKeepaliveDue(now: Int64, lastWrite: Int64) -> Bool {
        now - lastWrite >= sseKeepaliveMicros
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

    /// How often to sweep: a quarter of the ping interval (or of the SSE keepalive
    /// interval, if shorter), between 100 ms and 5 s.
    var sweepIntervalMicros: Int64 {
        min(5_000_000, max(100_000, min(pingIntervalMicros, sseKeepaliveMicros) / 4))
    }

    static func micros(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
