import CLibWebSockets
public import Envelope
import Foundation
public import Logging
import LibWebSocketsSupport
import StateCastSupport
import Synchronization

/// Serves one session to many viewers over WebSocket (SPEC §3).
///
/// One service thread owns libwebsockets and every connection. ``broadcast(_:)``
/// may be called from any thread: it assigns the seq, encodes the envelope once
/// and hands the bytes to the service thread, which writes the same bytes to
/// every viewer. A newcomer gets the current state as a `session_update` the
/// moment its handshake completes.
///
/// ```swift
/// let host = HostBroadcaster(configuration: HostConfiguration(), logger: logger)
/// try host.start(initial: Session(name: "demo", config: ["speed": 1]))
/// host.broadcast(.configUpdate(["speed": 2]))
/// host.stop()
/// ```
/// Most apps use ``SessionStore``, which debounces and classifies changes first.
public final class HostBroadcaster: Sendable {
    /// How this host listens and bounds its viewers.
    public let configuration: HostConfiguration
    private let logger: Logger
    private let lifecycle = Mutex<Lifecycle>(.idle)
    /// The `/metrics` counters, kept across a stop and a new start.
    let metrics = HostMetrics()
    /// This host's share of lws's process-wide log hook: lws's lines at trace level.
    private let libraryLog: LibWebSocketsLog

    private enum Lifecycle {
        case idle
        case running(ServiceCore, DispatchSemaphore)
        case stopped
    }

    /// Creates a host; nothing listens until ``start(initial:)``.
    public init(configuration: HostConfiguration = HostConfiguration(), logger: Logger = Logger(label: "statecast.host")) {
        self.configuration = configuration
        self.logger = logger
        let verbose = logger.logLevel <= .trace
        libraryLog = LibWebSocketsLog(levels: verbose ? statecast_lws_log_verbose() : statecast_lws_log_errors()) { level, line in
            logger.trace("\(line)", metadata: ["lws-level": "\(level)"])
        }
    }

    deinit { stop() }

    /// Binds and starts serving `initial`. Returns once listening.
    ///
    /// The initial state's seq is ``HostConfiguration/initialSeq`` or, by
    /// default, the wall-clock time in milliseconds. A run that sent more than
    /// one envelope per millisecond ends ahead of the clock, so a later run's
    /// seqs may overlap; positions are therefore (epoch, seq) pairs, and a
    /// resume or SSE id that does not name this run's epoch gets the full state.
    ///
    /// - Throws: ``HostError`` when the port is taken or the address cannot be bound.
    public func start(initial: Session) throws(HostError) {
        try validate(configuration)
        // lws wants a numeric address (or an interface name): resolve host names such as `localhost` here.
        var resolved = configuration
        resolved.bindAddress = try NetworkInterfaces.listenAddress(for: configuration.bindAddress)
        let configuration = resolved
        let started: Result<(ServiceCore, DispatchSemaphore), HostError> = lifecycle.withLock { state in
            guard case .idle = state else { return .failure(.alreadyStarted) }
            let shared = HostShared(
                session: initial, seq: configuration.initialSeq ?? Self.wallClockSeq(),
                epoch: configuration.initialEpoch ?? Self.makeEpoch(), onBroadcast: configuration.onBroadcast)
            let core = ServiceCore(shared: shared, configuration: configuration, logger: logger, metrics: metrics)
            let ready = DispatchSemaphore(value: 0)
            let finished = DispatchSemaphore(value: 0)
            let outcome = Mutex<Int?>(nil)
            let thread = Thread {
                let port = core.createServer()
                if let port, let context = core.context {
                    shared.attach(context: context, port: port, localIp: NetworkInterfaces.advertisedAddress(bind: core.configuration.bindAddress))
                }
                outcome.withLock { $0 = port }
                ready.signal()
                if port != nil { core.run() }
                finished.signal()
            }
            thread.name = "statecast-host-service"
            thread.stackSize = 1 << 20
            thread.start()
            ready.wait()
            guard outcome.withLock({ $0 }) != nil else {
                finished.wait()
                return .failure(diagnoseBindFailure(configuration))
            }
            state = .running(core, finished)
            return .success((core, finished))
        }
        let (core, _) = try started.get()
        logger.debug("listening", metadata: ["port": "\(core.shared.status(clientCount: 0).port)"])
    }

    /// Closes every viewer with 1001 (going away), stops the service thread and
    /// releases the port. Safe to call more than once.
    public func stop() {
        let running: (ServiceCore, DispatchSemaphore)? = lifecycle.withLock { state in
            guard case .running(let core, let finished) = state else { return nil }
            state = .stopped
            return (core, finished)
        }
        guard let (core, finished) = running else { return }
        if core.shared.requestStop() { finished.wait() }
    }

    /// Sends `payload` to every viewer as the next envelope; returns its seq.
    ///
    /// The payload also updates the state newcomers receive. Call from any thread.
    @discardableResult
    public func broadcast(_ payload: Envelope.Payload) -> Int64 {
        guard let core = runningCore else { return 0 }
        return core.shared.publish(payload)
    }

    /// What ``relay(_:)`` did with an envelope.
    public enum RelayOutcome: Sendable, Equatable {
        /// Served to viewers.
        case applied
        /// Older than (or the same as) what the host has: ignored.
        case stale
        /// A config_update whose seq skips one or more: ignored; load the full state and relay it.
        case gap
        /// No seq: a relay cannot order it.
        case rejected
    }

    /// Serves an envelope made by another host (a relay's upstream), keeping
    /// its seq and epoch, so viewers cannot tell the relay from the host.
    ///
    /// A `session_update` with a newer seq, or with another epoch, replaces the
    /// state (another epoch also sends every viewer the full state again); a
    /// `config_update` must carry exactly the next seq, else ``RelayOutcome/gap``.
    @discardableResult
    public func relay(_ envelope: Envelope) -> RelayOutcome {
        guard let core = runningCore else { return .rejected }
        // Seqs from elsewhere are untrusted: one near Int64.max would overflow `seq + 1`.
        guard let seq = envelope.seq, Self.acceptableSeqs.contains(seq) else { return .rejected }
        return core.shared.relay(envelope)
    }

    /// Adds members to `/status` (for example a relay's `role`, `upstream` and `degraded`).
    public func setStatusExtras(_ extras: JSONObject) {
        runningCore?.shared.setStatusExtras(extras)
    }

    /// Running, port, LAN address, viewer count, seq and uptime.
    public var status: HostStatus {
        guard let core = runningCore else {
            return HostStatus(running: false, port: configuration.port, localIp: "127.0.0.1", clientCount: 0, seq: 0, uptimeSeconds: 0)
        }
        return core.shared.status(clientCount: core.clientCount.load(ordering: .relaxed))
    }

    /// This run's epoch (a random id; it changes with every start).
    public var epoch: String? { runningCore?.shared.epoch }

    /// The state as of the newest broadcast (what a newcomer receives).
    public var session: Session? {
        runningCore?.shared.latest().1
    }

    private var runningCore: ServiceCore? {
        lifecycle.withLock { state in
            if case .running(let core, _) = state { return core }
            return nil
        }
    }

    /// The seqs a host serves: 0 through 2^53 - 1, the largest integer a
    /// JavaScript viewer reads exactly. Seqs from elsewhere (a relay's Redis)
    /// outside this range are refused, so `seq + 1` can never overflow.
    public static let acceptableSeqs: ClosedRange<Int64> = 0...((1 << 53) - 1)

    /// A seq for a new run's initial state: the wall-clock time in ms, so a later
    /// run's seqs exceed an earlier one's.
    public static func wallClockSeq() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// A new run's epoch: 16 random hex digits.
    public static func makeEpoch() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(format: "%016llx", generator.next() as UInt64)
    }

    private func validate(_ configuration: HostConfiguration) throws(HostError) {
        guard (0...65535).contains(configuration.port) else {
            throw .invalidConfiguration("port \(configuration.port) is out of range; give --port a number from 0 to 65535")
        }
        guard configuration.pingTimeout > configuration.pingInterval else {
            throw .invalidConfiguration("the ping timeout must be longer than the ping interval; raise --ping-timeout-s or lower --ping-interval-s")
        }
        if (configuration.tlsCertificatePath == nil) != (configuration.tlsKeyPath == nil) {
            throw .invalidConfiguration("TLS needs both a certificate and a key; give --tls-cert and --tls-key together")
        }
        for path in [configuration.tlsCertificatePath, configuration.tlsKeyPath].compactMap({ $0 }) {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw .invalidConfiguration("cannot read \(path); check the path given with --tls-cert / --tls-key")
            }
        }
        if let token = configuration.token, token.isEmpty {
            throw .invalidConfiguration("the token is empty; give a non-empty --token or leave it out")
        }
        if let maxClients = configuration.maxClients, maxClients < 1 {
            throw .invalidConfiguration("--max-clients must be at least 1, got \(maxClients)")
        }
        guard configuration.pingInterval >= .seconds(1) else {
            throw .invalidConfiguration("the ping interval must be at least 1 second; raise --ping-interval-s")
        }
        try Self.validateLimits(configuration)
        if let key = configuration.tlsKeyPath, TLSKeyFile.isEncrypted(path: key) {
            throw .invalidConfiguration(
                "the TLS key \(key) is protected by a passphrase, which the host cannot ask for; "
                    + "write a decrypted copy with `openssl pkey -in \(key) -out KEY.pem` and pass that with --tls-key")
        }
    }

    /// The longest interval any timer accepts (one day): larger values would
    /// overflow the microsecond clock arithmetic.
    static let longestInterval: Duration = .seconds(86_400)

    /// Ranges that keep every size and time computation far from overflow.
    private static func validateLimits(_ configuration: HostConfiguration) throws(HostError) {
        let intervals: [(Duration, String)] = [
            (configuration.pingInterval, "the ping interval (--ping-interval-s)"),
            (configuration.pingTimeout, "the ping timeout (--ping-timeout-s)"),
            (configuration.sseKeepaliveInterval, "the SSE keepalive interval (--sse-keepalive-s)"),
            (configuration.clientPollInterval, "the client poll interval (--client-poll-ms)"),
        ]
        for (interval, name) in intervals where interval > longestInterval || interval <= .zero {
            throw .invalidConfiguration("\(name) must be more than 0 and at most one day (86400 s); choose a smaller value")
        }
        if !(1...(1 << 30)).contains(configuration.maxIncomingMessageBytes) {
            throw .invalidConfiguration("the largest incoming message must be from 1 byte to 1 GiB (--max-message-kb 1 to 1048576)")
        }
        if !(0...(1 << 32)).contains(configuration.maxViewerBacklogBytes) || !(1...(1 << 24)).contains(configuration.maxViewerBacklogCount) {
            throw .invalidConfiguration("the viewer backlog must be at most 4 GiB and 16777216 updates (--max-viewer-buffer-kb 1 to 4194304)")
        }
        if !(1...3600).contains(configuration.handshakeTimeoutSeconds) {
            throw .invalidConfiguration("the handshake timeout must be from 1 to 3600 seconds")
        }
        if let seq = configuration.initialSeq, !acceptableSeqs.contains(seq) {
            throw .invalidConfiguration("the initial seq \(seq) is outside 0…\(acceptableSeqs.upperBound); choose a smaller one")
        }
    }

    /// lws only says "no"; find out whether the port is taken.
    private func diagnoseBindFailure(_ configuration: HostConfiguration) -> HostError {
        let port = configuration.port
        if configuration.tlsCertificatePath != nil, !NetworkInterfaces.isPortInUse(port, address: configuration.bindAddress) {
            return .invalidConfiguration("TLS could not start; check that --tls-cert and --tls-key are a matching PEM certificate and key")
        }
        if NetworkInterfaces.isPortInUse(port, address: configuration.bindAddress) {
            return .portInUse(port)
        }
        return .bindFailed(address: configuration.bindAddress, port: port)
    }
}

extension HostBroadcaster {
    /// The libwebsockets version this process runs on, e.g. `4.1.6` (without the
    /// empty build suffix Debian's library reports as `4.1.6-`).
    public static var libwebsocketsVersion: String { StateCastVersion.trimmingBuildSuffix(String(cString: statecast_lws_version())) }
}
