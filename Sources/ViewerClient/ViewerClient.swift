public import Envelope
public import Logging
import Synchronization

/// Mirrors one StateCast host's state over WebSocket (SPEC §4).
///
/// A `ViewerClient` connects with libwebsockets' client on a service thread
/// of its own, reconnects on the SPEC schedule (2 s ×1.5 up to 15 s, with
/// jitter) after any unintended close, pings the host so that a host that
/// silently vanished is noticed, and applies `session_update` and
/// whitelisted `config_update` messages to its copy of the state.
///
/// ```swift
/// let viewer = try ViewerClient(url: "ws://192.168.1.20:9876")
/// viewer.start()
/// for await change in viewer.changes {
///     print(change.changedKeys, change.session.config)
/// }
/// // …
/// await viewer.disconnect()   // close 1000, no reconnect
/// ```
///
/// Policies:
/// - `disconnect()` sends close 1000 and never reconnects; it also stops the
///   client's engine, so a client is used for one session of connections
///   (create a new one to connect again).
/// - A host that answers the handshake with HTTP 401 or 403 puts the client
///   in ``ConnectionState/notAuthorized(httpStatus:)`` and it stops: retrying
///   with the same token would be refused again. Other refusals (HTTP 503
///   when the host is full, …) are retried on the schedule.
/// - Unusable messages are dropped and counted in ``counters``, logged at
///   debug level, never fatal.
/// - A reconnect asks the host to resume (`?since=SEQ&epoch=EPOCH`,
///   docs/PROTOCOL.md §4) once a full state with a seq and an epoch was
///   applied, so a StateCast host sends only what changed meanwhile
///   (`configuration.resumes`).
///
/// - Given several URLs (a host and its relays, docs/SCALING.md), the client
///   uses one at a time and, when it fails, moves to the next after
///   `configuration.failoverDelay`, resuming there with the same
///   `?since=SEQ&epoch=EPOCH`; the backoff applies only once every URL has
///   failed in a row (``FailoverSchedule``).
///
/// Call `disconnect()` before dropping the last reference; a client dropped
/// while connected stops its engine without a close handshake.
public final class ViewerClient: Sendable {
    /// The host's address (the first of ``urls``).
    public var url: ViewerURL { urls[0] }
    /// Every address the client may use, in failover order (at least one).
    public let urls: [ViewerURL]
    /// The configuration the client was created with.
    public let configuration: ViewerConfiguration

    private let logger: Logger
    private let transport: any ViewerTransport
    private let core: Mutex<Core>

    private struct Core: Sendable {
        var machine: ConnectionStateMachine
        var viewer: ViewerState
        var started = false
        var finished = false
        var lastProblem: String?
        /// Set when a connection could not even start: the next attempts go
        /// without the resume query until a connection is established.
        var resumeSuppressed = false
        var reconnectTimer: Task<Void, Never>?
        var nextObserverID = 0
        var stateObservers: [Int: AsyncStream<ConnectionState>.Continuation] = [:]
        var changeObservers: [Int: AsyncStream<AppliedChange>.Continuation] = [:]
        /// Config keys whose rejection under the explicit schema was already reported.
        var reportedRejections: Set<String> = []
    }

    /// Creates a client for the host at `url` (`ws://HOST:PORT[/path]`). Nothing connects before ``start()``.
    ///
    /// - Throws: ``ViewerError`` `.badURL` naming what is wrong with the URL,
    ///   `.invalidConfiguration`, or `.engineFailure` if libwebsockets cannot start.
    public convenience init(
        url: String,
        configuration: ViewerConfiguration = ViewerConfiguration(),
        logger: Logger = Logger(label: "statecast.viewer")
    ) throws(ViewerError) {
        try self.init(url: ViewerURL(parsing: url), configuration: configuration, logger: logger)
    }

    /// Creates a client for an already parsed URL. Nothing connects before ``start()``.
    public convenience init(
        url: ViewerURL,
        configuration: ViewerConfiguration = ViewerConfiguration(),
        logger: Logger = Logger(label: "statecast.viewer")
    ) throws(ViewerError) {
        try self.init(urls: [url], configuration: configuration, logger: logger)
    }

    /// Creates a client that fails over between several equivalent hosts (a
    /// host and its relays), in the order given. Nothing connects before ``start()``.
    ///
    /// - Throws: ``ViewerError`` `.badURL` for the first malformed URL, or
    ///   `.invalidConfiguration` when `urls` is empty.
    public convenience init(
        urls: [String],
        configuration: ViewerConfiguration = ViewerConfiguration(),
        logger: Logger = Logger(label: "statecast.viewer")
    ) throws(ViewerError) {
        var parsed: [ViewerURL] = []
        for text in urls { parsed.append(try ViewerURL(parsing: text)) }
        try self.init(urls: parsed, configuration: configuration, logger: logger)
    }

    /// Creates a client that fails over between several already parsed URLs.
    public convenience init(
        urls: [ViewerURL],
        configuration: ViewerConfiguration = ViewerConfiguration(),
        logger: Logger = Logger(label: "statecast.viewer")
    ) throws(ViewerError) {
        guard let first = urls.first else {
            throw .invalidConfiguration("no host URL was given", fix: "give at least one ws:// URL")
        }
        let transport = try LWSTransport(url: first, configuration: configuration, logger: logger)
        try self.init(urls: urls, configuration: configuration, logger: logger, transport: transport)
    }

    /// Creates a client over any transport (tests use an in-memory one).
    convenience init(url: ViewerURL, configuration: ViewerConfiguration, logger: Logger, transport: any ViewerTransport) throws(ViewerError) {
        try self.init(urls: [url], configuration: configuration, logger: logger, transport: transport)
    }

    /// Creates a client for several URLs over any transport (tests use an in-memory one).
    init(urls: [ViewerURL], configuration: ViewerConfiguration, logger: Logger, transport: any ViewerTransport) throws(ViewerError) {
        _ = try configuration.validatedPingSeconds()
        guard !urls.isEmpty else {
            throw .invalidConfiguration("no host URL was given", fix: "give at least one ws:// URL")
        }
        guard configuration.failoverDelay >= .zero else {
            throw .invalidConfiguration("the failover delay is negative", fix: "give 0 or more, for example 250 ms")
        }
        self.urls = urls
        self.configuration = configuration
        self.logger = logger
        self.transport = transport
        core = Mutex(Core(
            machine: ConnectionStateMachine(
                backoff: configuration.backoff, random: configuration.randomSource,
                endpoints: urls.count, failoverDelay: configuration.failoverDelay),
            viewer: ViewerState(schema: configuration.schema)
        ))
    }

    deinit {
        let timer = core.withLock { $0.reconnectTimer }
        timer?.cancel()
        transport.requestStop()
    }

    // MARK: Reading the state

    /// Where the connection stands now.
    public var state: ConnectionState { core.withLock { $0.machine.state } }

    /// The URL in use now (or tried next, while reconnecting).
    public var currentURL: ViewerURL { urls[core.withLock { $0.machine.endpoint }] }

    /// The host's state as last applied; nil until the first `session_update`.
    public var session: Session? { core.withLock { $0.viewer.session } }

    /// What was received and dropped so far.
    public var counters: ViewerCounters { core.withLock { $0.viewer.counters } }

    /// The `config_update` whitelist in force: the explicit schema, else the
    /// one derived from the last full state (nil before any).
    public var activeSchema: FieldSchema? { core.withLock { $0.viewer.activeSchema } }

    /// Why the last connection ended or the last attempt failed, as one
    /// phrase ("127.0.0.1:9876 refused the connection (is the host running?)"); nil if none did.
    public var lastProblem: String? { core.withLock { $0.lastProblem } }

    /// Connection states as they change, starting with the current one.
    ///
    /// Each access returns a new stream; every stream sees every change. The
    /// streams finish after ``disconnect()``.
    public var states: AsyncStream<ConnectionState> {
        observe(\.stateObservers) { core, continuation in continuation.yield(core.machine.state) }
    }

    /// Every applied change, from the moment of access on (no replay: read
    /// ``session`` for the state so far). Each access returns a new stream;
    /// the streams finish after ``disconnect()``.
    ///
    /// Each stream holds at most `configuration.changeBufferLimit` changes
    /// (each carries a whole session): a consumer that falls further behind
    /// skips the oldest buffered changes, never the newest, so it always ends
    /// with the state the viewer holds.
    public var changes: AsyncStream<AppliedChange> {
        observe(\.changeObservers, buffering: .bufferingNewest(configuration.changeBufferLimit))
    }

    /// A new stream registered in `observers` until it terminates; finished at
    /// once after ``disconnect()``. `first` may yield an initial element.
    private func observe<Element: Sendable>(
        _ observers: any WritableKeyPath<Core, [Int: AsyncStream<Element>.Continuation]> & Sendable,
        buffering policy: AsyncStream<Element>.Continuation.BufferingPolicy = .unbounded,
        first: (borrowing Core, AsyncStream<Element>.Continuation) -> Void = { _, _ in }
    ) -> AsyncStream<Element> {
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: policy)
        let registered = core.withLock { core -> Bool in
            first(core, continuation)
            guard !core.finished else { return false }
            let id = core.nextObserverID
            core.nextObserverID += 1
            core[keyPath: observers][id] = continuation
            continuation.onTermination = { [weak self] _ in
                _ = self?.core.withLock { $0[keyPath: observers].removeValue(forKey: id) }
            }
            return true
        }
        if !registered { continuation.finish() }
        return stream
    }

    // MARK: Connecting

    /// Starts connecting (and keeps reconnecting until ``disconnect()``). Calling it again does nothing.
    public func start() {
        let first = core.withLock { core -> Bool in
            guard !core.started, !core.finished else { return false }
            core.started = true
            return true
        }
        guard first else { return }
        transport.start { [weak self] event in self?.transportReported(event) }
        handle(.connectRequested)
    }

    /// Closes the connection with code 1000, cancels any pending reconnect,
    /// waits for the host's close reply (at most `configuration.closeTimeout`)
    /// and stops the engine. The client never reconnects afterwards.
    public func disconnect() async {
        // The close timeout runs from the moment of the request.
        let timeout = Self.sleeper(on: configuration.clock, for: configuration.closeTimeout)
        handle(.disconnectRequested)
        await waitUntilSettled(timeout: timeout)
        await transport.shutdown()
        let (timer, states, changes) = core.withLock { core in
            core.finished = true
            defer {
                core.reconnectTimer = nil
                core.stateObservers = [:]
                core.changeObservers = [:]
            }
            return (core.reconnectTimer, Array(core.stateObservers.values), Array(core.changeObservers.values))
        }
        timer?.cancel()
        // Finish outside the lock: onTermination handlers take it.
        states.forEach { $0.finish() }
        changes.forEach { $0.finish() }
    }

    private func waitUntilSettled(timeout deadline: @escaping @Sendable () async throws -> Void) async {
        let states = self.states
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await state in states where state.isFinal { return }
            }
            group.addTask {
                try? await deadline()
            }
            await group.next()
            group.cancelAll()
        }
    }

    // MARK: Driving the state machine

    private func handle(_ event: ConnectionStateMachine.Event) {
        let resumes = configuration.resumes
        let (action, resumeQuery, endpoint) = core.withLock { core -> (ConnectionStateMachine.Action, String?, Int) in
            let before = core.machine.state
            let action = core.machine.handle(event)
            let after = core.machine.state
            if after != before {
                for observer in core.stateObservers.values { observer.yield(after) }
            }
            switch action {
            case let .scheduleReconnect(attempt, delay):
                core.reconnectTimer?.cancel()
                core.reconnectTimer = makeReconnectTimer(attempt: attempt, delay: delay)
            case .cancelReconnect, .openConnection:
                core.reconnectTimer?.cancel()
                core.reconnectTimer = nil
            default:
                break
            }
            return (action, resumes && !core.resumeSuppressed ? ResumeLimits.query(for: core.viewer) : nil,
                    core.machine.endpoint)
        }
        let target = urls[endpoint]
        switch action {
        case .none, .cancelReconnect:
            break
        case .openConnection:
            transport.open(url: target, path: resumeQuery.map { target.path(appendingQuery: $0) } ?? target.path)
        case let .scheduleReconnect(attempt, delay):
            logger.debug("reconnect attempt \(attempt) to \(target) in \(formatSeconds(delay)) s")
        case let .sendClose(code):
            transport.close(code: code)
        case let .notifyNotAuthorized(status):
            logger.debug("\(target) refused the handshake with HTTP \(status); not retrying")
        }
    }

    /// A sleep until `duration` from *now* on `clock`: the deadline is fixed
    /// when this is called, not when the returned function starts running.
    private static func sleeper<C: Clock<Duration>>(on clock: C, for duration: Duration) -> @Sendable () async throws -> Void {
        let deadline = clock.now.advanced(by: duration)
        return {
            // A task that starts late may find the deadline already reached.
            guard clock.now < deadline else { return }
            try await clock.sleep(until: deadline, tolerance: nil)
        }
    }

    private func makeReconnectTimer(attempt: Int, delay: Duration) -> Task<Void, Never> {
        let sleep = Self.sleeper(on: configuration.clock, for: delay)
        return Task { [weak self] in
            do {
                try await sleep()
            } catch {
                return  // cancelled
            }
            self?.handle(.reconnectTimerFired(attempt: attempt))
        }
    }

    private func transportReported(_ event: TransportEvent) {
        switch event {
        case .established:
            core.withLock { core in
                core.lastProblem = nil
                core.resumeSuppressed = false
            }
            handle(.established)
        case let .closed(code):
            let problem = code.map { "the host closed the connection (code \($0)\(Self.closeCodeName($0)))" }
                ?? "the connection was lost (no close frame)"
            core.withLock { $0.lastProblem = problem }
            handle(.closed(code: code))
        case .pingTimeout:
            core.withLock { $0.lastProblem = "the host stopped answering pings" }
            handle(.pingTimeout)
        case let .connectionError(reason, status?) where (300..<400).contains(status):
            // A redirect is a refusal (issue 13, item 13): the transport never follows it.
            core.withLock { $0.lastProblem = reason }
            handle(.handshakeRejected(httpStatus: status))
        case let .connectionError(_, status?) where status != 101:
            core.withLock { $0.lastProblem = "the host answered the handshake with HTTP \(status)" }
            handle(.handshakeRejected(httpStatus: status))
        case let .connectionError(reason, _):
            core.withLock { $0.lastProblem = reason }
            handle(.connectionError(reason: reason))
        case let .couldNotStart(reason):
            // Whatever made the request unusable (issue 13, item 14), the next
            // attempts go without the resume query.
            core.withLock { core in
                core.lastProblem = reason
                core.resumeSuppressed = true
            }
            handle(.connectionError(reason: reason))
        case let .failed(reason):
            core.withLock { $0.lastProblem = reason }
            handle(.closed(code: nil))
        case let .message(frame):
            apply(frame)
        }
    }

    private func apply(_ frame: IncomingFrame) {
        let outcome = core.withLock { core -> ViewerState.Outcome in
            let outcome = core.viewer.apply(frame)
            if case let .applied(change, _) = outcome {
                for observer in core.changeObservers.values { observer.yield(change) }
            }
            return outcome
        }
        let rejected: [FieldSchema.Rejection]
        switch outcome {
        case let .applied(change, list):
            rejected = list
            for rejection in list { logger.debug("\(rejection) (seq \(change.seq.map(String.init) ?? "none"))") }
        case let .dropped(reason):
            if case let .nothingAccepted(list) = reason { rejected = list } else { rejected = [] }
            logger.debug("message dropped: \(reason)")
        }
        reportOnce(rejected)
    }

    /// Under an explicit schema, a field the host sends and the schema rejects
    /// means this viewer will never show it: say so once per key, at warning
    /// level, with the fix. (A derived schema follows the host's full states,
    /// so its rejections stay at debug.)
    private func reportOnce(_ rejected: [FieldSchema.Rejection]) {
        guard !rejected.isEmpty, configuration.schema != nil else { return }
        let fresh = core.withLock { core in rejected.filter { core.reportedRejections.insert($0.key).inserted } }
        for rejection in fresh {
            logger.warning("\(rejection); add \"\(rejection.key)\" to the schema with the type the host sends (--field \(rejection.key):TYPE or the --schema file) to follow it")
        }
    }

    private static func closeCodeName(_ code: UInt16) -> String {
        switch code {
        case 1000: ", normal closure"
        case 1001: ", going away"
        case 1002: ", protocol error"
        case 1005: ", no code given"
        case 1007: ", invalid UTF-8"
        case 1008: ", policy violation"
        case 1009: ", message too big"
        case 1011: ", host error"
        default: ""
        }
    }
}
