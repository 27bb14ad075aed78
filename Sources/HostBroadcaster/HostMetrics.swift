import Synchronization

/// The counters behind `GET /metrics` (Prometheus text format 0.0.4; every
/// metric is described in docs/OPERATIONS.md).
///
/// One per ``HostBroadcaster``, kept across restarts of it. Written where the
/// events happen (mostly the service thread; the debounce counters from the
/// thread that changes the session), read when `/metrics` is rendered.
final class HostMetrics: Sendable {
    /// Why an upgrade or an event stream was refused, by the HTTP status sent.
    enum Refusal: String, CaseIterable {
        case badRequest = "bad_request", unauthorized, forbidden, methodNotAllowed = "method_not_allowed", full, other

        init(status: Int) {
            switch status {
            case 400: self = .badRequest
            case 401: self = .unauthorized
            case 403: self = .forbidden
            case 405: self = .methodNotAllowed
            case 503: self = .full
            default: self = .other
            }
        }
    }

    /// Why the host closed a viewer itself.
    enum Drop: String, CaseIterable {
        case heartbeat, writeFailed = "write_failed", messageTooBig = "message_too_big"
    }

    /// What a viewer was sent instead of the updates it missed.
    enum FullState: String, CaseIterable {
        case newcomer, conflated, resumeMiss = "resume_miss"
    }

    private let sessionUpdates = Atomic<Int>(0)
    private let sessionUpdateBytes = Atomic<Int>(0)
    private let configUpdates = Atomic<Int>(0)
    private let configUpdateBytes = Atomic<Int>(0)
    private let changesSubmitted = Atomic<Int>(0)
    private let flushesSent = Atomic<Int>(0)
    private let flushesUnchanged = Atomic<Int>(0)
    private let resumesServed = Atomic<Int>(0)
    private let rare = Mutex<[String: Int]>([:])

    /// One envelope (or SSE event) of `bytes` bytes written to one viewer.
    func sent(fullState: Bool, bytes: Int) {
        if fullState {
            sessionUpdates.add(1, ordering: .relaxed)
            sessionUpdateBytes.add(bytes, ordering: .relaxed)
        } else {
            configUpdates.add(1, ordering: .relaxed)
            configUpdateBytes.add(bytes, ordering: .relaxed)
        }
    }

    func refused(status: Int) { bump("refused:\(Refusal(status: status).rawValue)") }
    func dropped(_ reason: Drop) { bump("dropped:\(reason.rawValue)") }
    func fullState(_ reason: FullState) { bump("full:\(reason.rawValue)") }
    func resumedFromHistory() { resumesServed.add(1, ordering: .relaxed) }
    func changeSubmitted() { changesSubmitted.add(1, ordering: .relaxed) }
    func flushed(sent: Bool) {
        if sent { flushesSent.add(1, ordering: .relaxed) } else { flushesUnchanged.add(1, ordering: .relaxed) }
    }

    private func bump(_ key: String) { rare.withLock { $0[key, default: 0] += 1 } }

    /// What a scrape shows besides the counters: taken on the service thread.
    struct Snapshot {
        var websocketViewers: Int
        var sseViewers: Int
        var status: HostStatus
    }

    /// The whole `/metrics` body.
    func render(_ snapshot: Snapshot, process: ProcessStats = .current()) -> String {
        var out = PrometheusText()
        out.gauge("statecast_viewers", "Viewers connected now, by kind.",
                  [(#"kind="websocket""#, Double(snapshot.websocketViewers)), (#"kind="sse""#, Double(snapshot.sseViewers))])
        out.gauge("statecast_seq", "Seq of the newest envelope.", [("", Double(snapshot.status.seq))])
        out.gauge("statecast_uptime_seconds", "Seconds since the host started serving.", [("", snapshot.status.uptimeSeconds)])
        let rare = rare.withLock { $0 }
        out.counter("statecast_handshakes_refused_total", "WebSocket upgrades and event streams refused, by reason.",
                    Refusal.allCases.map { (#"reason="\#($0.rawValue)""#, Double(rare["refused:\($0.rawValue)"] ?? 0)) })
        out.counter("statecast_envelopes_sent_total", "Envelopes written to viewers, by type (one per viewer).", [
            (#"type="session_update""#, Double(sessionUpdates.load(ordering: .relaxed))),
            (#"type="config_update""#, Double(configUpdates.load(ordering: .relaxed))),
        ])
        out.counter("statecast_bytes_sent_total", "Bytes of envelopes written to viewers, by type (frames and SSE framing included).", [
            (#"type="session_update""#, Double(sessionUpdateBytes.load(ordering: .relaxed))),
            (#"type="config_update""#, Double(configUpdateBytes.load(ordering: .relaxed))),
        ])
        out.counter("statecast_full_states_total", "Full states sent to a viewer, by why: a newcomer, a slow viewer past the buffer cap (conflated), a resume the history could not serve.",
                    FullState.allCases.map { (#"reason="\#($0.rawValue)""#, Double(rare["full:\($0.rawValue)"] ?? 0)) })
        out.counter("statecast_resumes_from_history_total", "Reconnecting viewers caught up from the history instead of a full state.",
                    [("", Double(resumesServed.load(ordering: .relaxed)))])
        out.counter("statecast_viewers_dropped_total", "Viewers the host closed, by reason (heartbeat: stopped answering pings).",
                    Drop.allCases.map { (#"reason="\#($0.rawValue)""#, Double(rare["dropped:\($0.rawValue)"] ?? 0)) })
        out.counter("statecast_debounce_changes_total", "Changes handed to the debouncer (file saves, stdin lines, API calls).",
                    [("", Double(changesSubmitted.load(ordering: .relaxed)))])
        out.counter("statecast_debounce_flushes_total", "Debounce windows that ended, by result: sent an envelope, or nothing had changed.", [
            (#"result="sent""#, Double(flushesSent.load(ordering: .relaxed))),
            (#"result="unchanged""#, Double(flushesUnchanged.load(ordering: .relaxed))),
        ])
        let extras = snapshot.status.extras
        if case .string("relay")? = extras["role"] {
            let degraded = if case .bool(true)? = extras["degraded"] { true } else { false }
            let upstreamSeq = if case .int(let seq)? = extras["upstreamSeq"] { seq } else { snapshot.status.seq }
            let resyncs: Int64 = if case .int(let count)? = extras["resyncs"] { count } else { 0 }
            out.gauge("statecast_relay_redis_up", "1 while the relay follows Redis, 0 while it is degraded (reconnecting).",
                      [("", degraded ? 0 : 1)])
            out.gauge("statecast_relay_lag_envelopes", "Envelopes seen in Redis that the relay's viewers have not been sent yet.",
                      [("", Double(max(0, upstreamSeq - snapshot.status.seq)))])
            out.counter("statecast_relay_resyncs_total", "Times the relay reloaded the state from Redis (a gap or a new host run).",
                        [("", Double(resyncs))])
        }
        process.write(to: &out)
        return out.text
    }
}
