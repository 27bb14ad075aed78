import CLibWebSockets
import Envelope
import Synchronization

/// The state producers and the service thread share, behind one Mutex.
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
    }

    private let state: Mutex<State>
    /// This run's id: sent in every session_update; a resume naming another epoch gets the full state.
    let epoch: String

    init(session: Session, seq: Int64, epoch: String) {
        state = Mutex(State(seq: seq, session: session))
        self.epoch = epoch
    }

    /// Applies `payload`, assigns the next seq, encodes once and queues it.
    func publish(_ payload: Envelope.Payload) -> Int64 {
        state.withLock { state in
            state.seq += 1
            switch payload {
            case .sessionUpdate(let session):
                state.session = session
            case .configUpdate(let changes):
                for (key, value) in changes { state.session.config[key] = value }
            }
            let isFull = if case .sessionUpdate = payload { true } else { false }
            let bytes = Envelope(payload, seq: state.seq, epoch: isFull ? epoch : nil).encoded()
            let message = OutgoingMessage(seq: state.seq, isFullState: isFull, bytes: bytes)
            if let context = state.context {
                state.inbox.append(message)
                lws_cancel_service(context.pointer)
            }
            return state.seq
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
                uptimeSeconds: state.running ? Double(monotonicMicros() - state.startedAt) / 1e6 : 0)
        }
    }
}

/// The lws context pointer, as other threads may hold it.
struct ContextHandle: @unchecked Sendable {
    // @unchecked: other threads use this pointer only for lws_cancel_service,
    // the one libwebsockets call that is safe off the service thread, and only
    // under HostShared's Mutex, which the service thread also takes to clear it
    // before destroying the context.
    let pointer: OpaquePointer
}
