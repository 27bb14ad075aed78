import ArgumentParser
import Dispatch
import Envelope
import Foundation
import HostBroadcaster
import Logging
import ServiceLifecycle

/// `statecast-host serve [SESSION.json] …`
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a session file (watched for changes), stdin JSON lines, or the built-in demo.")

    @Argument(help: "Session JSON file to serve and watch. Without it, a built-in demo session is served.")
    var sessionFile: String?

    @Option(help: "TCP port to listen on (0 picks a free one).")
    var port: Int = 9876

    @Option(help: "Address to listen on (0.0.0.0: every IPv4 interface).")
    var bind: String = "0.0.0.0"

    @Option(help: "Trailing debounce window in milliseconds (0 sends every change at once).")
    var debounceMs: Int = 250

    @Option(help: "With a steady stream of changes, still send at least this often (milliseconds).")
    var maxWaitMs: Int?

    @Flag(help: "Read JSON lines from standard input: {\"session\":{…}} replaces, {\"config\":{…}} and friends patch.")
    var stdin = false

    @Flag(help: "Do not watch the session file for changes.")
    var noWatch = false

    @Option(help: "How often to check the viewer count for the status line (milliseconds).")
    var clientPollMs: Int = 2000

    @Option(help: "Ping a viewer that has been silent this many seconds.")
    var pingIntervalS: Int = 30

    @Option(help: "Hang up on a viewer silent this many seconds.")
    var pingTimeoutS: Int = 60

    @Option(help: "Most KiB of updates held for viewers that are behind and for resuming ones (the history); past it a viewer gets one fresh full state.")
    var maxViewerBufferKb: Int = 1024

    @Option(help: "Seconds between ': keepalive' comments on an idle /events (Server-Sent Events) stream.")
    var sseKeepaliveS: Double = 30

    @Option(help: "Largest message (KiB) a viewer may send; bigger ones close it with 1009.")
    var maxMessageKb: Int = 64

    @Option(help: "Require viewers to present this token (Authorization: Bearer … or ?token=…). Also: STATECAST_TOKEN.")
    var token: String?

    @Option(help: "Read the token from this file (first line).")
    var tokenFile: String?

    @Option(help: "Allow browser viewers from this origin only (repeatable, e.g. https://app.example). Default: any origin.")
    var allowOrigin: [String] = []

    @Option(help: "Most viewers at once; the next upgrade gets HTTP 503.")
    var maxClients: Int?

    @Option(help: "Serve a WebSocket echo endpoint at this path for debugging (e.g. /echo). Off by default.")
    var echoPath: String?

    @Option(help: "PEM certificate: serve wss:// and https:// (with --tls-key).")
    var tlsCert: String?

    @Option(help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Flag(help: "Print a QR code of the viewer page's LAN URL (http://LANIP:PORT/) for a phone to scan.")
    var qr = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @OptionGroup var redis: RedisOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535, got \(port)") }
        guard debounceMs >= 0 else { throw ValidationError("--debounce-ms must be 0 or more, got \(debounceMs)") }
        if let maxWaitMs, maxWaitMs <= 0 { throw ValidationError("--max-wait-ms must be more than 0, got \(maxWaitMs)") }
        guard clientPollMs >= 10 else { throw ValidationError("--client-poll-ms must be at least 10, got \(clientPollMs)") }
        guard pingIntervalS >= 1 else { throw ValidationError("--ping-interval-s must be at least 1, got \(pingIntervalS)") }
        guard pingTimeoutS > pingIntervalS else {
            throw ValidationError("--ping-timeout-s (\(pingTimeoutS)) must be longer than --ping-interval-s (\(pingIntervalS))")
        }
        guard maxViewerBufferKb >= 1 else { throw ValidationError("--max-viewer-buffer-kb must be at least 1, got \(maxViewerBufferKb)") }
        guard sseKeepaliveS >= 0.1, sseKeepaliveS.isFinite else { throw ValidationError("--sse-keepalive-s must be at least 0.1, got \(sseKeepaliveS)") }
        guard maxMessageKb >= 1 else { throw ValidationError("--max-message-kb must be at least 1, got \(maxMessageKb)") }
        if token != nil && tokenFile != nil { throw ValidationError("give either --token or --token-file, not both") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together; give both or neither") }
        if let maxClients, maxClients < 1 { throw ValidationError("--max-clients must be at least 1, got \(maxClients)") }
        if let echoPath, !echoPath.hasPrefix("/") { throw ValidationError("--echo-path must start with /, e.g. /echo") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got \(logLevel)")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "statecast.host")

        let initial: Session
        if let sessionFile {
            do {
                initial = try SessionFile.load(sessionFile)
            } catch {
                Console.error(error.description)
                throw ExitCode(2)
            }
        } else {
            initial = DemoSession.initial
        }

        let secret: String?
        do throws(TokenError) {
            secret = try resolveToken()
        } catch {
            Console.error(error.message)
            throw ExitCode(2)
        }

        var configuration = HostConfiguration()
        configuration.token = secret
        configuration.allowedOrigins = allowOrigin
        configuration.maxClients = maxClients
        configuration.echoPath = echoPath
        configuration.tlsCertificatePath = tlsCert
        configuration.tlsKeyPath = tlsKey
        configuration.port = port
        configuration.bindAddress = bind
        configuration.clientPollInterval = .milliseconds(clientPollMs)
        configuration.pingInterval = .seconds(pingIntervalS)
        configuration.pingTimeout = .seconds(pingTimeoutS)
        configuration.maxViewerBacklogBytes = maxViewerBufferKb * 1024
        configuration.maxIncomingMessageBytes = maxMessageKb * 1024
        configuration.sseKeepaliveInterval = .milliseconds(Int64((sseKeepaliveS * 1000).rounded()))
        configuration.onClientCountChange = { count in
            Console.out(count == 1 ? "1 viewer connected" : "\(count) viewers connected")
        }

        let publisher = try redis.publisher(initial: initial, configuration: configuration, logger: logger)
        if let (publisher, seq, epoch) = publisher {
            configuration.initialSeq = seq
            configuration.initialEpoch = epoch
            configuration.onBroadcast = { envelope, state in publisher.record(envelope, state: state) }
        }

        let host = HostBroadcaster(configuration: configuration, logger: logger)
        let store = SessionStore(
            initial: initial, host: host, interval: .milliseconds(debounceMs),
            maxWait: maxWaitMs.map { .milliseconds($0) })
        do {
            try store.start()
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }
        publisher?.0.start()

        // Watch before announcing: a change made right after the "Serving" line must not be missed.
        var watcher: SessionFileWatcher?
        if let sessionFile, !noWatch {
            watcher = SessionFileReloader.watch(path: sessionFile, store: store)
        }

        let status = host.status
        let scheme = tlsCert == nil ? "ws" : "wss"
        Console.out("Serving \"\(initial.name)\" on \(bind):\(status.port)")
        Console.out("Viewers can connect to:")
        for address in NetworkInterfaces.lanIPv4Addresses() where bind == "0.0.0.0" || bind == address {
            Console.out("  \(scheme)://\(address):\(status.port)/")
        }
        if bind == "0.0.0.0" || bind.hasPrefix("127.") {
            Console.out("  \(scheme)://localhost:\(status.port)/")
        }
        let page = tlsCert == nil ? "http" : "https"
        if let address = NetworkInterfaces.lanIPv4Addresses().first(where: { bind == "0.0.0.0" || bind == $0 }) {
            Console.out("Browsers: \(page)://\(address):\(status.port)/")
        } else {
            Console.out("Browsers: \(page)://localhost:\(status.port)/")
        }
        if secret != nil { Console.out("Viewers must present the token (Authorization: Bearer … or ?token=…).") }
        if qr { ViewerQR.print(bind: bind, port: status.port, secure: tlsCert != nil, token: secret) }

        if stdin {
            StdinReader.start(store: store)
        }
        let demo = sessionFile == nil ? Task { await DemoSession.animate(store) } : nil

        let fileWatcher = watcher
        let service = HostService(store: store, host: host) {
            logger.info("shutting down")
            demo?.cancel()
            fileWatcher?.stop()
        }
        let group = ServiceGroup(configuration: .init(
            services: [service], gracefulShutdownSignals: [.sigint, .sigterm], logger: logger))
        try await group.run()
        publisher?.0.stop()
    }
}

extension Serve {
    struct TokenError: Error { let message: String }

    /// --token, else --token-file, else STATECAST_TOKEN.
    func resolveToken() throws(TokenError) -> String? {
        if let token { return token }
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw TokenError(message: "cannot read the token file \(tokenFile); check the path given with --token-file")
            }
            let line = text.split(whereSeparator: \.isNewline).first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            guard !line.isEmpty else { throw TokenError(message: "the token file \(tokenFile) is empty; put the token on its first line") }
            return line
        }
        if let environment = ProcessInfo.processInfo.environment["STATECAST_TOKEN"], !environment.isEmpty { return environment }
        return nil
    }
}

/// Writing lines for people: stdout for status, stderr for problems.
enum Console {
    static func out(_ line: String) {
        // Unbuffered, so a pipe sees each status line at once.
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("statecast-host: error: \(message)\n".utf8))
    }

    static func warning(_ message: String) {
        FileHandle.standardError.write(Data("statecast-host: warning: \(message)\n".utf8))
    }
}
