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
/// wins); a structural change, an added or removed key or a value changing its
/// JSON kind makes the batch a full update.
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

    /// - Parameters:
    ///   - interval: the trailing debounce window (SPEC default 250 ms; zero sends at once).
    ///   - maxWait: with a steady stream of changes, still send at least this often.
    ///   - clock: the clock the debounce runs on (a test clock in tests).
    public convenience init(initial: Session, host: HostBroadcaster, interval: Duration = .milliseconds(250),
                            maxWait: Duration? = nil, clock: C) {
        self.init(
            initial: initial, interval: interval, maxWait: maxWait, clock: clock,
            publish: { host.broadcast($0) },
            startHost: { (session: Session) throws(HostError) in try host.start(initial: session) })
    }

    /// A store that hands its envelopes to `publish` (tests observe them here).
    init(initial: Session, interval: Duration, maxWait: Duration?, clock: C,
         publish: @escaping @Sendable (Envelope.Payload) -> Void,
         startHost: @escaping @Sendable (Session) throws(HostError) -> Void) {
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
        let change: SessionChange? = state.withLock { state in
            let before = state.live.config.updateValue(value, forKey: key)
            switch SessionDiff.keyChange(from: before, to: value) {
            case .unchanged: return nil
            case .value: return .config([key: value])
            case .shape: return .full
            }
        }
        if let change { submit(change) }
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
        debouncer.withLock { $0 }?.submit(change)
    }

    /// The debounced batch is ready: compare with what viewers have and send.
    ///
    /// The classification is always made against what viewers last got
    /// (``SessionDiff``), so a batch that added a key and then only changed
    /// values, or set and removed a key, still comes out right.
    private func emit(_ change: SessionChange) {
        state.withLock { state in
            let diff = switch change {
            case .full: SessionDiff(from: state.sent, to: state.live)
            case .config(let keys): SessionDiff(from: state.sent, to: state.live, changedConfigKeys: keys.keys)
            }
            switch diff {
            case .nothing: return
            case .configUpdate(let changes):
                for (key, value) in changes { state.sent.config[key] = value }
            case .sessionUpdate:
                state.sent = state.live
            }
            if let payload = diff.payload { publish(payload) }
        }
    }
}

extension SessionStore where C == ContinuousClock {
    /// A store on the real clock.
    public convenience init(initial: Session, host: HostBroadcaster, interval: Duration = .milliseconds(250), maxWait: Duration? = nil) {
        self.init(initial: initial, host: host, interval: interval, maxWait: maxWait, clock: ContinuousClock())
    }
}
