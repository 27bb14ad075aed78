import ArgumentParser
import Envelope
import Foundation
import HostBroadcaster
import Logging
import ServiceLifecycle

/// `statecast-host relay --redis URL --channel NAME …`: serve another host's
/// session, fed through Redis (docs/SCALING.md).
struct Relay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a session published to Redis by `serve --redis`: viewers cannot tell a relay from the host.")

    @OptionGroup var redis: RedisOptions

    @Option(help: "TCP port to listen on (0 picks a free one).")
    var port: Int = 9876

    @Option(help: "Address to listen on (0.0.0.0: every IPv4 interface).")
    var bind: String = "0.0.0.0"

    @Option(help: "How often to check the viewer count for the status line (milliseconds).")
    var clientPollMs: Int = 2000

    @Option(help: "Ping a viewer that has been silent this many seconds.")
    var pingIntervalS: Int = 30

    @Option(help: "Hang up on a viewer silent this many seconds.")
    var pingTimeoutS: Int = 60

    @Option(help: "Most KiB of updates held for a viewer that is behind (and for resuming); past it the viewer gets one fresh full state.")
    var maxViewerBufferKb: Int = 1024

    @Option(help: "Largest message (KiB) a viewer may send; bigger ones close it with 1009.")
    var maxMessageKb: Int = 64

    @Option(help: "Require viewers to present this token (Authorization: Bearer … or ?token=…). Also: STATECAST_TOKEN.")
    var token: String?

    @Option(help: "Read the token from this file (first line).")
    var tokenFile: String?

    @Option(help: "Allow browser viewers from this origin only (repeatable). Default: any origin.")
    var allowOrigin: [String] = []

    @Option(help: "Most viewers at once; the next upgrade gets HTTP 503.")
    var maxClients: Int?

    @Option(help: "PEM certificate: serve wss:// and https:// (with --tls-key).")
    var tlsCert: String?

    @Option(help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard redis.redis != nil, redis.channel != nil else {
            throw ValidationError("a relay needs --redis redis://HOST:PORT and --channel NAME (the ones the host was started with)")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535, got \(port)") }
        guard clientPollMs >= 10 else { throw ValidationError("--client-poll-ms must be at least 10, got \(clientPollMs)") }
        guard pingIntervalS >= 1 else { throw ValidationError("--ping-interval-s must be at least 1, got \(pingIntervalS)") }
        guard pingTimeoutS > pingIntervalS else {
            throw ValidationError("--ping-timeout-s (\(pingTimeoutS)) must be longer than --ping-interval-s (\(pingIntervalS))")
        }
        guard maxViewerBufferKb >= 1 else { throw ValidationError("--max-viewer-buffer-kb must be at least 1, got \(maxViewerBufferKb)") }
        guard maxMessageKb >= 1 else { throw ValidationError("--max-message-kb must be at least 1, got \(maxMessageKb)") }
        if token != nil && tokenFile != nil { throw ValidationError("give either --token or --token-file, not both") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together; give both or neither") }
        if let maxClients, maxClients < 1 { throw ValidationError("--max-clients must be at least 1, got \(maxClients)") }
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
        let logger = Logger(label: "statecast.relay")

        let secret = try resolveToken()

        let (url, channel) = try redis.parsed()
        let feed: RelayFeed
        let start: RelayFeed.Start
        do throws(RedisError) {
            feed = try RelayFeed(url: url, channel: channel, logger: logger)
            start = try feed.initialState {
                Console.out("Waiting for a host to publish on \(channel) at \(url) …")
            }
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }

        var configuration = HostConfiguration()
        configuration.token = secret
        configuration.allowedOrigins = allowOrigin
        configuration.maxClients = maxClients
        configuration.tlsCertificatePath = tlsCert
        configuration.tlsKeyPath = tlsKey
        configuration.port = port
        configuration.bindAddress = bind
        configuration.clientPollInterval = .milliseconds(clientPollMs)
        configuration.pingInterval = .seconds(pingIntervalS)
        configuration.pingTimeout = .seconds(pingTimeoutS)
        configuration.maxViewerBacklogBytes = maxViewerBufferKb * 1024
        configuration.maxIncomingMessageBytes = maxMessageKb * 1024
        configuration.initialSeq = start.seq
        configuration.initialEpoch = start.epoch
        configuration.onClientCountChange = { count in
            Console.out(count == 1 ? "1 viewer connected" : "\(count) viewers connected")
        }

        let host = HostBroadcaster(configuration: configuration, logger: logger)
        do {
            try host.start(initial: start.session)
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }
        feed.start(serving: host)

        let status = host.status
        let scheme = tlsCert == nil ? "ws" : "wss"
        Console.out("Relaying \(channel) from \(url)")
        Console.out("Serving \"\(start.session.name)\" on \(bind):\(status.port)")
        Console.out("Viewers can connect to:")
        for address in NetworkInterfaces.lanIPv4Addresses() where bind == "0.0.0.0" || bind == address {
            Console.out("  \(scheme)://\(address):\(status.port)/")
        }
        if bind == "0.0.0.0" || bind.hasPrefix("127.") {
            Console.out("  \(scheme)://localhost:\(status.port)/")
        }
        if secret != nil { Console.out("Viewers must present the token (Authorization: Bearer … or ?token=…).") }

        let group = ServiceGroup(configuration: .init(
            services: [RelayService(feed: feed, host: host, logger: logger)],
            gracefulShutdownSignals: [.sigint, .sigterm], logger: logger))
        try await group.run()
    }
}

/// Runs until SIGINT/SIGTERM, then stops following Redis and closes every viewer with 1001.
struct RelayService: Service {
    let feed: RelayFeed
    let host: HostBroadcaster
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down")
        feed.stop()
        host.stop()
    }
}

extension Relay {
    /// --token, else --token-file, else STATECAST_TOKEN (as `serve`); exits 2 on an unreadable file.
    func resolveToken() throws -> String? {
        if let token { return token }
        if let tokenFile {
            let text = try? String(contentsOfFile: tokenFile, encoding: .utf8)
            let line = text?.split(whereSeparator: \.isNewline).first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            guard !line.isEmpty else {
                Console.error("cannot read a token from \(tokenFile); put the token on the first line of the file given with --token-file")
                throw ExitCode(2)
            }
            return line
        }
        if let environment = ProcessInfo.processInfo.environment["STATECAST_TOKEN"], !environment.isEmpty { return environment }
        return nil
    }
}

/// `--redis URL --channel NAME`, shared by `serve` (publish) and `relay` (follow).
struct RedisOptions: ParsableArguments {
    @Option(help: "Redis server, redis://HOST:PORT[/DB]: `serve` publishes every envelope there; `relay` serves what is published.")
    var redis: String?

    @Option(help: "Channel name in Redis (keys statecast:NAME…); letters, digits and . _ -.")
    var channel: String?

    func validate() throws {
        if (redis == nil) != (channel == nil) { throw ValidationError("--redis and --channel go together; give both or neither") }
    }

    /// The parsed URL and channel; prints the problem and exits 2 when one is malformed.
    func parsed() throws -> (RedisURL, RedisChannel) {
        do throws(RedisError) {
            return (try RedisURL(parsing: redis ?? ""), try RedisChannel(channel ?? ""))
        } catch {
            Console.error(error.description)
            throw ExitCode(2)
        }
    }

    /// For `serve --redis`: checks that Redis answers (exit 1 naming the URL if
    /// not) and returns a publisher for a host starting with `initial`, with
    /// the seq and epoch to give the host.
    func publisher(initial: Session, configuration: HostConfiguration, logger: Logger) throws -> (RedisPublisher, seq: Int64, epoch: String)? {
        guard redis != nil else { return nil }
        let (url, channel) = try parsed()
        let seq = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        var generator = SystemRandomNumberGenerator()
        let epoch = String(format: "%016llx", generator.next() as UInt64)
        do throws(RedisError) {
            let publisher = try RedisPublisher(
                url: url, channel: channel, initial: initial, seq: seq, epoch: epoch,
                maxCount: configuration.maxViewerBacklogCount, maxBytes: configuration.maxViewerBacklogBytes, logger: logger)
            return (publisher, seq, epoch)
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }
    }
}
