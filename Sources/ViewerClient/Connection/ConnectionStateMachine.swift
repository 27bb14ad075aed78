/// The viewer's connection logic without I/O (STYLE.md point 2).
///
/// The driver feeds it events (from libwebsockets callbacks, timers and the
/// app) and carries out the action it returns. Policy:
/// - Any close the viewer did not ask for — 1001 (going away), 1006
///   (abnormal, TCP dropped), any other code, a refused connection, a
///   handshake failure, a ping timeout — leads to `reconnecting` on the
///   ``ReconnectBackoff`` schedule, which resets once a connection is established.
/// - With several URLs (``FailoverSchedule``) a failure moves to the next URL
///   after the short `failoverDelay` (jittered like the backoff); the backoff
///   delay applies only once every URL has failed in a row. The driver reads
///   ``endpoint`` when it carries out `openConnection`.
/// - `disconnectRequested` sends close 1000 and never reconnects.
/// - A handshake refused with HTTP 401 or 403 is final (`notAuthorized`):
///   the token or origin will not become acceptable by retrying, so the
///   viewer stops and reports it instead of knocking forever. Other HTTP
///   statuses (503 when the host is full, 404 …) are retried.
struct ConnectionStateMachine: Sendable {
    enum Event: Sendable, Hashable {
        /// The app asked to connect (`start()`).
        case connectRequested
        /// The WebSocket handshake completed.
        case established
        /// The connection closed; `code` is the close code the host sent, nil if none (1006).
        case closed(code: UInt16?)
        /// The connection could not be made (refused, DNS, TLS, malformed handshake …).
        case connectionError(reason: String)
        /// The host answered the upgrade request with this HTTP status instead of 101.
        case handshakeRejected(httpStatus: Int)
        /// The reconnect timer for attempt `attempt` fired.
        case reconnectTimerFired(attempt: Int)
        /// The app asked to disconnect (`disconnect()`).
        case disconnectRequested
        /// The host stopped answering pings; the connection is gone.
        case pingTimeout
    }

    enum Action: Sendable, Hashable {
        case none
        /// Open a new connection to the host.
        case openConnection
        /// Fire `reconnectTimerFired(attempt:)` after `delay`.
        case scheduleReconnect(attempt: Int, after: Duration)
        /// Drop a pending reconnect timer.
        case cancelReconnect
        /// Close the connection (or the attempt under way) with this close code.
        case sendClose(code: UInt16)
        /// Tell the app the host refused the token or origin.
        case notifyNotAuthorized(httpStatus: Int)
    }

    /// Close code of an intentional disconnect.
    static let normalClosure: UInt16 = 1000

    private(set) var state: ConnectionState = .disconnected
    private(set) var backoff: ReconnectBackoff
    private(set) var failover: FailoverSchedule
    /// The delay before trying the next URL after a failure (before jitter).
    let failoverDelay: Duration
    /// Reconnect attempts since the last established connection.
    private(set) var attempts = 0
    private var random: any RandomNumberGenerator & Sendable

    init(
        backoff: ReconnectBackoff = ReconnectBackoff(), random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        endpoints: Int = 1, failoverDelay: Duration = .milliseconds(250)
    ) {
        self.backoff = backoff
        self.random = random
        failover = FailoverSchedule(count: endpoints)
        self.failoverDelay = failoverDelay
    }

    /// The index of the URL the next (or current) connection goes to.
    var endpoint: Int { failover.current }

    /// Applies `event` and returns what the driver must do.
    mutating func handle(_ event: Event) -> Action {
        switch (state, event) {
        case (.disconnected, .connectRequested):
            state = .connecting
            return .openConnection

        case (.connecting, .established):
            state = .connected
            backoff.reset()
            failover.succeeded()
            attempts = 0
            return .none

        case (.connecting, .handshakeRejected(let status)) where status == 401 || status == 403:
            state = .notAuthorized(httpStatus: status)
            return .notifyNotAuthorized(httpStatus: status)

        case (.connecting, .closed), (.connecting, .connectionError), (.connecting, .handshakeRejected),
             (.connecting, .pingTimeout),
             (.connected, .closed), (.connected, .connectionError), (.connected, .pingTimeout):
            return scheduleReconnect()

        case (.connecting, .disconnectRequested), (.connected, .disconnectRequested):
            state = .closing
            return .sendClose(code: Self.normalClosure)

        case (.reconnecting(let attempt, _), .reconnectTimerFired(let fired)) where fired == attempt:
            state = .connecting
            return .openConnection

        case (.reconnecting, .disconnectRequested):
            state = .disconnected
            return .cancelReconnect

        case (.closing, .closed), (.closing, .connectionError), (.closing, .handshakeRejected),
             (.closing, .pingTimeout):
            state = .disconnected
            return .none

        case (.closing, .established):
            // The attempt we were cancelling completed anyway: close it properly.
            return .sendClose(code: Self.normalClosure)

        default:
            // Repeated requests, stale timers and late callbacks change nothing.
            return .none
        }
    }

    private mutating func scheduleReconnect() -> Action {
        let delay: Duration
        if failover.failed() {
            delay = backoff.nextDelay(using: &random)
        } else {
            let jitter = backoff.jitter
            let factor = jitter > 0 ? 1 + Double.random(in: -jitter...jitter, using: &random) : 1
            delay = .fromSeconds(failoverDelay.seconds * factor)
        }
        attempts += 1
        state = .reconnecting(attempt: attempts, delay: delay)
        return .scheduleReconnect(attempt: attempts, after: delay)
    }
}
