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

    @Option(help: "Trailing debounce window in milliseconds (0 sends every change at once).")
    var debounceMs: Int = 250

    @Option(help: "With a steady stream of changes, still send at least this often (milliseconds).")
    var maxWaitMs: Int?

    @Flag(help: "Read JSON lines from standard input: {\"session\":{…}} replaces, {\"config\":{…}} and friends patch.")
    var stdin = false

    @Flag(help: "Do not watch the session file for changes.")
    var noWatch = false

    @Flag(help: "Print a QR code of the viewer page's LAN URL (http://LANIP:PORT/) for a phone to scan.")
    var qr = false

    @OptionGroup var serving: ServingOptions

    @OptionGroup var redis: RedisOptions

    func validate() throws {
        try ServingOptions.check(debounceMs, 0...86_400_000, "--debounce-ms")
        if let maxWaitMs { try ServingOptions.check(maxWaitMs, 1...86_400_000, "--max-wait-ms") }
    }

    func run() async throws {
        Console.ignoreBrokenPipes()
        let logger = serving.bootstrapLogging(label: "statecast.host")

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

        var (configuration, secret) = try serving.hostConfiguration()

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
        serving.announce(name: initial.name, port: status.port, token: secret)
        if qr { ViewerQR.print(bind: serving.bind, port: status.port, secure: serving.tlsCert != nil, token: secret) }

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
