import CLibWebSockets
import Envelope
import Debounce

/// The state producers and the service thread share, behind one lock
/// (``Locked``: a Mutex whose ordering ThreadSanitizer can see).
///
/// Producers (``HostBroadcaster/broadcast(_:)``) assign seqs, apply the change
/// to the latest state, encode the envelope once and queue it; the service
/// thread takes the queue on `LWS_CALLBACK_EVENT_WAIT_CANCELLED`.
final class HostShared: Sendable {
    struct State {
        var seq: Int64
        var session: Session
        var inbox: [OutgoingMessage] = []
        var stopRequested = false
        /// Set while the service thread has a live context (for lws_cancel_service).
        var context: ContextHandle?
        var port = 0
        var startedAt: Int64 = 0
        var running = false
        var localIp = "127.0.0.1"
        /// This run's id: sent in every envelope; a resume naming another epoch gets the full state.
        var epoch: String
        /// Extra members for `/status` (a relay's role and upstream state).
        var statusExtras: JSONObject = [:]
    }

    private let state: Locked<State>
    private let onBroadcast: (@Sendable (Envelope, Session) -> Void)?

    init(session: Session, seq: Int64, epoch: String, onBroadcast: (@Sendable (Envelope, Session) -> Void)? = nil) {
        state = Locked(State(seq: seq, session: session, epoch: epoch))
        self.onBroadcast = onBroadcast
    }

    var epoch: String { state.withLock { $0.epoch } }

    /// Classifies `payload` against the state, assigns the next seq, encodes once and queues it.
    func publish(_ payload: Envelope.Payload) -> Int64 {
        state.withLock { state in
            state.seq += 1
            let payload = Self.classified(payload, over: state.session)
            Self.apply(payload, to: &state.session)
            let envelope = Envelope(payload, seq: state.seq, epoch: state.epoch)
            Self.enqueue(envelope, resetsViewers: false, in: &state)
            onBroadcast?(envelope, state.session)
            return state.seq
        }
    }

    /// Serves an envelope made elsewhere (a relay's upstream), keeping its seq and epoch.
    func relay(_ envelope: Envelope) -> HostBroadcaster.RelayOutcome {
        state.withLock { state in
            guard let seq = envelope.seq else { return .rejected }
            switch envelope.payload {
            case .sessionUpdate:
                let newEpoch = envelope.epoch.map { $0 != state.epoch } ?? false
                if !newEpoch, seq <= state.seq { return .stale }
                if let epoch = envelope.epoch { state.epoch = epoch }
                state.seq = seq
                Self.apply(envelope.payload, to: &state.session)
                // Another epoch: cursors of the old run mean nothing; everyone starts afresh.
                Self.enqueue(Envelope(envelope.payload, seq: seq, epoch: state.epoch), resetsViewers: newEpoch, in: &state)
                return .applied
            case .configUpdate:
                // A config_update of another run cannot be merged into this one's state.
                if let epoch = envelope.epoch, epoch != state.epoch { return .gap }
                if seq <= state.seq { return .stale }
                guard seq == state.seq + 1 else { return .gap }
                state.seq = seq
                let payload = Self.classified(envelope.payload, over: state.session)
                Self.apply(payload, to: &state.session)
                Self.enqueue(Envelope(payload, seq: seq, epoch: state.epoch), resetsViewers: false, in: &state)
                return .applied
            }
        }
    }

    /// A `config_update` that would add a config key or change a value's JSON
    /// kind goes out as the full state instead (``SessionDiff``, SPEC §2), so
    /// that a viewer's derived whitelist accepts every `config_update` it gets,
    /// whoever made the payload (an app calling `broadcast`, a relay's upstream).
    static func classified(_ payload: Envelope.Payload, over session: Session) -> Envelope.Payload {
        guard case .configUpdate(let changes) = payload else { return payload }
        var next = session
        for (key, value) in changes { next.config[key] = value }
        if case .sessionUpdate = SessionDiff(from: session, to: next, changedConfigKeys: changes.keys) {
            return .sessionUpdate(next)
        }
        return payload
    }

    func setStatusExtras(_ extras: JSONObject) {
        state.withLock { $0.statusExtras = extras }
    }

    private static func apply(_ payload: Envelope.Payload, to session: inout Session) {
        switch payload {
        case .sessionUpdate(let replacement):
            session = replacement
        case .configUpdate(let changes):
            for (key, value) in changes { session.config[key] = value }
        }
    }

    private static func enqueue(_ envelope: Envelope, resetsViewers: Bool, in state: inout State) {
        let isFull = if case .sessionUpdate = envelope.payload { true } else { false }
        let message = OutgoingMessage(seq: envelope.seq ?? state.seq, epoch: state.epoch, isFullState: isFull,
                                      bytes: envelope.encoded(), resetsViewers: resetsViewers)
        if let context = state.context {
            state.inbox.append(message)
            lws_cancel_service(context.pointer)
        }
    }

    /// The queued messages, whether a stop was asked for, and the newest seq,
    /// all at one instant (so the seq matches the last message taken).
    func takeInbox() -> (messages: [OutgoingMessage], stopRequested: Bool, latestSeq: Int64) {
        state.withLock { state in
            let messages = state.inbox
            state.inbox.removeAll(keepingCapacity: true)
            return (messages, state.stopRequested, state.seq)
        }
    }

    func latest() -> (Int64, Session) {
        state.withLock { ($0.seq, $0.session) }
    }

    /// The newest seq, its state and the epoch, at one instant.
    func snapshotSource() -> (seq: Int64, session: Session, epoch: String) {
        state.withLock { ($0.seq, $0.session, $0.epoch) }
    }

    func attach(context: OpaquePointer, port: Int, localIp: String) {
        state.withLock {
            $0.context = ContextHandle(pointer: context)
            $0.port = port
            $0.localIp = localIp
            $0.startedAt = monotonicMicros()
            $0.running = true
        }
    }

    func detachContext() {
        state.withLock {
            $0.context = nil
            $0.running = false
            $0.inbox.removeAll()
        }
    }

    /// Asks the service thread to close viewers and finish. False if not running.
    func requestStop() -> Bool {
        state.withLock { state in
            guard let context = state.context else { return false }
            state.stopRequested = true
            lws_cancel_service(context.pointer)
            return true
        }
    }

    func status(clientCount: Int) -> HostStatus {
        state.withLock { state in
            HostStatus(
                running: state.running,
                port: state.port,
                localIp: state.localIp,
                clientCount: clientCount,
                seq: state.seq,
                uptimeSeconds: state.running ? Double(monotonicMicros() - state.startedAt) / 1e6 : 0,
                extras: state.statusExtras)
        }
    }
}

/// The lws context pointer, as other threads may hold it.
struct ContextHandle: @unchecked Sendable {
    // @unchecked: other threads use this pointer only for lws_cancel_service,
    // the one libwebsockets call that is safe off the service thread, and only
    // under HostShared's lock, which the service thread also takes to clear it
    // before destroying the context.
    let pointer: OpaquePointer
}
