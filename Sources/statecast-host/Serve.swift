import ArgumentParser
import Dispatch
import Envelope
import Foundation
import HostBroadcaster
import Logging
import ServiceLifecycle
import StateCastRelay

/// `statecast-host serve [SESSION.json] …`
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a session file (watched for changes), stdin JSON lines, or the built-in demo.",
        discussion: """
            Examples:
              statecast-host serve session.json
                  serve session.json on 0.0.0.0:9876, publishing each save
              tail -f changes.jsonl | statecast-host serve session.json --stdin
                  apply JSON lines from another program as well
              statecast-host serve session.json -p 9000 --token-file token.txt
                  another port; viewers must present the token

            Every long option --NAME can also be set as STATECAST_NAME (STATECAST_PORT=9000); \
            --print-config shows the effective settings.

            Exit status: 0 stopped by Ctrl-C/SIGTERM; 1 could not serve (port in use, TLS files, \
            Redis not answering); 2 unusable session file, token file or Redis URL/channel; \
            64 a bad option or value.
            """)

    @Argument(help: "Session JSON file to serve and watch. Without it, a built-in demo session is served.")
    var sessionFile: String?

    @OptionGroup(title: "Session input") var input: SessionInputOptions

    @Flag(help: "Print a QR code of the viewer page's LAN URL (http://LANIP:PORT/) for a phone to scan.")
    var qr = false

    @OptionGroup var serving: ServingOptions

    @OptionGroup(title: "Redis") var redis: RedisOptions

    func run() async throws {
        Console.ignoreBrokenPipes()
        if serving.printedConfiguration() { return }
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
        let logger = serving.bootstrapLogging(label: "statecast.host", secret: secret)

        let publisher = try redis.attachPublisher(to: &configuration, initial: initial, logger: logger)

        let host = HostBroadcaster(configuration: configuration, logger: logger)
        let store = SessionStore(
            initial: initial, host: host, interval: .milliseconds(input.debounceMs),
            maxWait: input.maxWaitMs.map { .milliseconds($0) })
        do {
            try store.start()
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }
        publisher?.start()

        // Watch before announcing: a change made right after the "Serving" line must not be missed.
        var watcher: SessionFileWatcher?
        if let sessionFile, !input.noWatch {
            watcher = SessionFileReloader.watch(path: sessionFile, store: store)
        }

        let status = host.status
        serving.announce(name: initial.name, port: status.port, token: secret)
        if qr { ViewerQR.print(bind: serving.network.bind, port: status.port, secure: serving.security.tlsCert != nil, token: secret) }

        if input.stdin {
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
        publisher?.stop()
    }
}
