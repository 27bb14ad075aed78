public import Debounce
public import Envelope
import Synchronization

/// The host app's handle on its session: read it, change it, and every change
/// reaches the viewers debounced and classified (SPEC §2, §3).
///
/// ```swift
/// let host = HostBroadcaster(configuration: HostConfiguration(), logger: logger)
/// let store = SessionStore(initial: Session(name: "Mixer", config: ["gain": 0.5]), host: host)
/// try store.start()                              // starts the host with the initial state
/// store.setConfig("gain", 0.8)                  // viewers get {"type":"config_update",…,"payload":{"gain":0.8}}
/// store.update { $0.metadata["author"] = "ana" } // viewers get one session_update
/// store.replace(Session(name: "Other"))          // a new state altogether
/// store.flush()                                  // send what is pending now, without waiting
/// let now = store.session                        // the live state, pending changes included
/// ```
///
/// Within the debounce window changes coalesce: config keys merge (last value
/// wins); a structural change or a removed key makes the batch a full update.
/// When the window closes the store compares with what viewers last got and
/// sends one `config_update` with exactly the changed keys, one
/// `session_update`, or nothing when the values are the same again.
public final class SessionStore<C: Clock>: Sendable where C.Duration == Duration {
    private struct State {
        var live: Session
        var sent: Session
    }

    private let state: Locked<State>
    private let publish: @Sendable (Envelope.Payload) -> Void
    private let startHost: @Sendable (Session) throws(HostError) -> Void
    private let debouncer: Locked<Debouncer<C>?>
    private let metrics: HostMetrics?

    /// - Parameters:
    ///   - interval: the trailing debounce window (SPEC default 250 ms; zero sends at once).
    ///   - maxWait: with a steady stream of changes, still send at least this often.
    ///   - clock: the clock the debounce runs on (a test clock in tests).
    public convenience init(initial: Session, host: HostBroadcaster, interval: Duration = .milliseconds(250),
                            maxWait: Duration? = nil, clock: C) {
        self.init(
            initial: initial, interval: interval, maxWait: maxWait, clock: clock,
            publish: { host.broadcast($0) },
            startHost: { (session: Session) throws(HostError) in try host.start(initial: session) }, metrics: host.metrics)
    }

    /// A store that hands its envelopes to `publish` (tests observe them here).
    init(initial: Session, interval: Duration, maxWait: Duration?, clock: C,
         publish: @escaping @Sendable (Envelope.Payload) -> Void,
         startHost: @escaping @Sendable (Session) throws(HostError) -> Void, metrics: HostMetrics? = nil) {
        self.metrics = metrics
        self.publish = publish
        self.startHost = startHost
        state = Locked(State(live: initial, sent: initial))
        debouncer = Locked(nil)
        let made = Debouncer(interval: interval, maxWait: maxWait, clock: clock) { [weak self] change in
            self?.emit(change)
        }
        debouncer.withLock { $0 = made }
    }

    /// Starts the host serving the store's current state.
    public func start() throws(HostError) {
        let current = state.withLock { state in
            state.sent = state.live
            return state.live
        }
        try startHost(current)
    }

    /// The live state, including changes still inside the debounce window.
    public var session: Session { state.withLock { $0.live } }

    /// Changes the state in place; what actually changed is worked out for you.
    public func update(_ body: (inout Session) -> Void) {
        let change: SessionChange? = state.withLock { state in
            var next = state.live
            body(&next)
            let change = SessionChange(from: state.live, to: next)
            state.live = next
            return change
        }
        if let change { submit(change) }
    }

    /// Sets one config field.
    public func setConfig(_ key: String, _ value: JSONValue) {
        let changed = state.withLock { state in
            guard state.live.config[key] != value else { return false }
            state.live.config[key] = value
            return true
        }
        if changed { submit(.config([key: value])) }
    }

    /// Replaces the whole state.
    public func replace(_ session: Session) {
        update { $0 = session }
    }

    /// Sends whatever is pending now instead of at the end of the window.
    public func flush() {
        debouncer.withLock { $0 }?.flush()
    }

    private func submit(_ change: SessionChange) {
        metrics?.changeSubmitted()
        debouncer.withLock { $0 }?.submit(change)
    }

    /// The debounced batch is ready: compare with what viewers have and send.
    private func emit(_ change: SessionChange) {
        state.withLock { state in
            let payload: Envelope.Payload?
            switch change {
            case .full:
                switch SessionDiff(from: state.sent, to: state.live) {
                case .nothing: payload = nil
                case .configUpdate(let changes): payload = .configUpdate(changes)
                case .sessionUpdate(let session): payload = .sessionUpdate(session)
                }
                state.sent = state.live
            case .config(let keys):
                var changes: JSONObject = [:]
                var removed = false
                for key in keys.keys {
                    let now = state.live.config[key]
                    guard now != state.sent.config[key] else { continue }
                    if let now { changes[key] = now } else { removed = true }
                }
                if removed {
                    // A key set and removed again inside the window: only a full state says so.
                    payload = .sessionUpdate(state.live)
                    state.sent = state.live
                } else {
                    payload = changes.isEmpty ? nil : .configUpdate(changes)
                    for (key, value) in changes { state.sent.config[key] = value }
                }
            }
            metrics?.flushed(sent: payload != nil)
            if let payload { publish(payload) }
        }
    }
}

extension SessionStore where C == ContinuousClock {
    /// A store on the real clock.
    public convenience init(initial: Session, host: HostBroadcaster, interval: Duration = .milliseconds(250), maxWait: Duration? = nil) {
        self.init(initial: initial, host: host, interval: interval, maxWait: maxWait, clock: ContinuousClock())
    }
}
