import ArgumentParser
import Dispatch
import Envelope
import Foundation
import Logging
import ViewerClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `statecast-viewer URL …`: mirrors a StateCast host's live state (SPEC §4).
/// Thin: parses flags, then hands the work to `ViewerClient`.
@main
struct StatecastViewer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statecast-viewer",
        abstract: "Show a StateCast host's live state, and keep it in sync.",
        discussion: """
            Connects to the host at URL (ws://HOST:PORT[/path][?token=…]; the http:// address the host \
            prints for browsers and a bare HOST:PORT work too), shows its state and \
            follows every change. After an unexpected disconnect it reconnects after 2 s, then \
            ×1.5 per failure up to 15 s (±20 % jitter unless --no-jitter). Connection changes \
            go to stderr. Ctrl-C closes the connection (code 1000) and exits 0.

            Given several URLs (a host and its relays), it uses one at a time; when that one \
            fails it moves to the next after --failover-delay-ms and resumes there where it was \
            (?since=SEQ&epoch=EPOCH). The backoff above applies once every URL has failed in a row.

            config_update messages are merged only for whitelisted keys of the expected JSON \
            type: from --schema/--field when given, otherwise derived from the config of the \
            last full state.

            Exit status: 0 done or stopped by Ctrl-C/SIGTERM, but 130/143 when that stops --once \
            before any state; 1 runtime failure (no state within --once-timeout-s, output \
            file not writable), 2 bad URL, schema or option value, 3 the host refused the token \
            (HTTP 401/403), 64 a command line that cannot be parsed.
            """,
        version: StateCastVersion.line(program: "statecast-viewer", libwebsockets: ViewerClient.libwebsocketsVersion)
    )

    /// `-V` as well as `--version`, like websocat and curl.
    static func main() async {
        await main(StateCastVersion.expandingShortVersionFlag(Array(CommandLine.arguments.dropFirst())))
    }

    @Argument(help: ArgumentHelp(
        "The host's address, for example ws://192.168.1.20:9876; give several (a host and its relays) to fail over between them.",
        valueName: "URL"
    ))
    var urls: [String] = []

    @Option(name: .customLong("failover-delay-ms"), help: ArgumentHelp(
        "With several URLs: wait this long (±20 % jitter) before trying the next one after a failure.", valueName: "ms"))
    var failoverDelayMs: Int = 250

    @Option(name: [.short, .long], help: ArgumentHelp(
        "live (a view redrawn in place; default on a terminal), json-lines (one JSON line per change; default otherwise) or quiet.",
        valueName: "format"
    ))
    var format: OutputFormat?

    @Option(name: [.short, .long], help: ArgumentHelp("Keep FILE equal to the current state (replaced atomically).", valueName: "FILE"))
    var output: String?

    @Flag(help: "Print the first full state and exit (with --format json-lines: its stream line; with -q: nothing).")
    var once = false

    @Flag(name: .shortAndLong, help: "Print nothing but problems: the same as --format quiet.")
    var quiet = false

    @Option(name: .customLong("once-timeout-s"), help: ArgumentHelp("With --once: give up after this many seconds.", valueName: "seconds"))
    var onceTimeoutSeconds: Double = 10

    @Option(help: ArgumentHelp("A JSON file mapping config keys to types, e.g. {\"speed\":\"number\",\"mode\":\"string\"}.", valueName: "FILE"))
    var schema: String?

    @Option(name: .customLong("field"), help: ArgumentHelp(
        "Whitelist one config key as NAME:TYPE (number, integer, string, boolean, object, array, any); repeat for more.",
        valueName: "name:type"
    ))
    var fields: [String] = []

    @Flag(name: .customLong("no-jitter"), help: "Reconnect exactly after 2, 3, 4.5, … s.")
    var noJitter = false

    @Option(name: .customLong("ping-interval-s"), help: ArgumentHelp("Ping the host after this many idle seconds.", valueName: "seconds"))
    var pingIntervalSeconds: Int = 30

    @Option(name: .customLong("ping-timeout-s"), help: ArgumentHelp(
        "Reconnect when the host has given no sign of life for this many seconds (more than the interval).",
        valueName: "seconds"
    ))
    var pingTimeoutSeconds: Int = 60

    @Option(name: [.short, .long], help: ArgumentHelp(
        "The token the host requires (sent as Authorization: Bearer). Any user on this machine can read it in `ps`: "
            + "prefer --token-file or STATECAST_TOKEN.",
        valueName: "token"))
    var token: String?

    @Option(name: .customLong("token-file"), help: ArgumentHelp(
        "Read the token from FILE (its first line; keep the file readable only by you).", valueName: "FILE"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("PEM file of the CA that signed the host's certificate (for wss:// with a private CA).", valueName: "FILE"))
    var ca: String?

    @Flag(name: [.customShort("k"), .long], help: "Do not verify the host's certificate (wss://). Anyone on the path could read and change the state.")
    var insecure = false

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: LogLevel = .info

    enum LogLevel: String, ExpressibleByArgument, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
        var level: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
    }

    /// Why the viewer stops.
    enum Outcome: Sendable {
        case printedOnce
        /// SIGINT or SIGTERM (the signal's number).
        case interrupted(Int32)
        case notAuthorized(Int)
        case onceTimedOut
        case outputFailed(String)
        case streamEnded
    }

    func validate() throws {
        guard !urls.isEmpty else { throw ValidationError("give the host's address, for example ws://192.168.1.20:9876") }
        if quiet, let format, format != .quiet { throw ValidationError("-q/--quiet and --format \(format.rawValue) contradict each other; give one") }
        guard failoverDelayMs >= 0 else { throw ValidationError("--failover-delay-ms must be 0 or more, got \(failoverDelayMs)") }
        guard token == nil || tokenFile == nil else {
            throw ValidationError("give the token once: either --token or --token-file, not both")
        }
    }

    mutating func run() async throws {
        // Everything a user can get wrong is checked before connecting.
        let viewer: ViewerClient
        var tokenSources: [TokenSource] = []
        let stateFile = output.map(StateFile.init(path:))
        let level = logLevel.level
        do {
            var configuration = ViewerConfiguration()
            configuration.schema = try loadSchema()
            configuration.backoff.jitter = noJitter ? 0 : 0.2
            configuration.pingInterval = .seconds(pingIntervalSeconds)
            configuration.pingTimeout = .seconds(pingTimeoutSeconds)
            configuration.failoverDelay = .milliseconds(failoverDelayMs)
            let environmentToken = ProcessInfo.processInfo.environment["STATECAST_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            configuration.token = try tokenFile.map(Self.readToken(from:)) ?? token ?? environmentToken
            tokenSources = TokenSource.sources(flag: token, file: tokenFile, environment: environmentToken, urls: urls)
            if let ca {
                guard FileManager.default.isReadableFile(atPath: ca) else {
                    throw UsageError("cannot read the CA file \(ca); check the path given with --ca")
                }
                configuration.certificateAuthorityFile = ca
            }
            configuration.allowsInsecureTLS = insecure
            if insecure {
                Terminal.status("warning: --insecure: the host's certificate is not checked; anyone on the network path could read or change what you see")
            }
            if let output, let problem = StateFile.problem(with: output) { throw UsageError(problem) }
            guard onceTimeoutSeconds > 0, onceTimeoutSeconds.isFinite else {
                throw UsageError("--once-timeout-s must be a positive number of seconds, for example 10")
            }
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            var logger = Logger(label: "statecast.viewer")
            logger.logLevel = level
            viewer = try ViewerClient(urls: urls, configuration: configuration, logger: logger)
        } catch let error as ViewerError {
            Terminal.status(error.description)
            throw ExitCode(error.code == .engineFailure ? 1 : 2)
        } catch let error as UsageError {
            Terminal.status(error.description)
            throw ExitCode(2)
        }

        for text in urls {
            if let note = ViewerURL.interpretation(of: text) { Terminal.status(note) }
        }
        let format = quiet ? .quiet : (self.format ?? (Terminal.stdoutIsTTY && !once ? .live : .jsonLines))
        let outcome = await follow(viewer, format: format, stateFile: stateFile)
        var logger = Logger(label: "statecast.viewer")
        logger.logLevel = level
        logger.debug("\(Self.summary(viewer.counters))")
        try finish(outcome, viewer: viewer, stateFile: stateFile, tokenSources: tokenSources)
    }

    /// Runs until a signal, `--once` completes, the host refuses the token or the output file fails.
    private func follow(_ viewer: ViewerClient, format: OutputFormat, stateFile: StateFile?) async -> Outcome {
        let live = format == .live && !once ? LiveView(url: viewer.url) : nil
        // --once prints the state itself unless a format was asked for: json-lines gives the stream's line.
        let onceFormat: OutputFormat? = quiet ? .quiet : self.format
        let statusToStderr = live == nil || !Terminal.stderrIsTTY
        let signals = SignalWatcher()
        let states = viewer.states
        let changes = viewer.changes
        let (kicks, kick) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let once = self.once
        let onceTimeout = Duration.seconds(onceTimeoutSeconds)
        viewer.start()

        let outcome = await withTaskGroup(of: Outcome.self) { group -> Outcome in
            group.addTask {
                await signals.next().map { .interrupted($0) } ?? .streamEnded
            }
            group.addTask {
                var previous: ConnectionState = .disconnected
                var lastToldProblem: String?
                for await state in states where state != previous {
                    defer { previous = state }
                    if case let .notAuthorized(status) = state { return .notAuthorized(status) }
                    let problem = viewer.lastProblem
                    live?.show(state, problem: problem)
                    // A problem is told once ("could not resolve locahost"); the retries after it say "still failing".
                    var told = problem
                    if case .reconnecting = state {
                        if problem != nil, problem == lastToldProblem { told = "still failing" }
                        lastToldProblem = problem
                    } else if case .connected = state {
                        lastToldProblem = nil
                    }
                    if statusToStderr, let line = Self.describe(state, url: viewer.currentURL, problem: told) {
                        Terminal.status(line)
                    }
                }
                return .streamEnded
            }
            group.addTask {
                for await change in changes {
                    stateFile?.update(change.session)
                    kick.yield()
                    if once {
                        switch onceFormat {
                        case .jsonLines: Terminal.out(bytes: change.json.encoded() + [UInt8(ascii: "\n")])
                        case .quiet: break
                        case .live, nil:
                            let text = Terminal.stdoutIsTTY
                                ? change.session.json.prettyText(indent: 2) : change.session.json.jsonText
                            Terminal.out(text + "\n")
                        }
                        return .printedOnce
                    }
                    switch format {
                    case .live: live?.show(change)
                    case .jsonLines: Terminal.out(bytes: change.json.encoded() + [UInt8(ascii: "\n")])
                    case .quiet: break
                    }
                }
                return .streamEnded
            }
            if let stateFile {
                group.addTask {
                    for await _ in kicks {
                        do {
                            try stateFile.flush()
                        } catch {
                            return .outputFailed("\(error)")
                        }
                    }
                    return .streamEnded
                }
            }
            if let live {
                group.addTask {
                    await live.run()
                    return .streamEnded
                }
            }
            if once {
                group.addTask {
                    try? await Task.sleep(for: onceTimeout)
                    return Task.isCancelled ? .streamEnded : .onceTimedOut
                }
            }
            let first = await group.next() ?? .streamEnded
            group.cancelAll()
            return first
        }
        kick.finish()

        if case .interrupted = outcome {
            // A second Ctrl-C while the close handshake runs quits at once.
            Task.detached {
                if await signals.next() != nil { Glibc.exit(130) }
            }
        }
        await viewer.disconnect()
        live?.show(viewer.state, problem: nil)
        live?.finish()
        if statusToStderr, case .interrupted = outcome { Terminal.status("disconnected") }
        signals.stop()
        return outcome
    }

    private func finish(_ outcome: Outcome, viewer: ViewerClient, stateFile: StateFile?, tokenSources: [TokenSource]) throws {
        if let stateFile {
            do {
                try stateFile.flush()
            } catch {
                Terminal.status(error.description)
                throw ExitCode(1)
            }
        }
        switch outcome {
        case .interrupted(let number) where once:
            // --once ended by a signal before any state: the shell's 128+N (130 Ctrl-C, 143 SIGTERM).
            throw ExitCode(128 + number)
        case .printedOnce, .interrupted, .streamEnded:
            return
        case let .notAuthorized(status):
            Terminal.status(TokenSource.refusal(httpStatus: status, sources: tokenSources))
            throw ExitCode(3)
        case .onceTimedOut:
            let problem = viewer.lastProblem.map { " (\($0))" } ?? ""
            Terminal.status(
                "no state arrived from \(viewer.url) within \(formatted(onceTimeoutSeconds)) s\(problem); "
                    + "check that the host is running and the URL is right, or raise --once-timeout-s"
            )
            throw ExitCode(1)
        case let .outputFailed(message):
            Terminal.status(message)
            throw ExitCode(1)
        }
    }

    private func loadSchema() throws -> FieldSchema? {
        var result: FieldSchema?
        if let path = schema {
            let bytes = try Self.readFile(path, what: "the schema file")
            let json: JSONValue
            do {
                json = try JSONValue(parsing: bytes)
            } catch {
                throw UsageError("the schema file \(path) is not valid JSON: \(error)")
            }
            do {
                result = try FieldSchema(schemaJSON: json)
            } catch {
                throw UsageError("the schema file \(path) is not usable: \(error)")
            }
        }
        if !fields.isEmpty {
            let extra: FieldSchema
            do {
                extra = try FieldSchema(fieldSpecs: fields)
            } catch {
                throw UsageError("--field: \(error)")
            }
            var merged = result ?? FieldSchema()
            for (name, type) in extra.fields {
                guard merged.fields[name] == nil, !merged.untypedFields.contains(name) else {
                    throw UsageError("--field \(name) is also in the schema file; declare it once")
                }
                merged.fields[name] = type
            }
            for name in extra.untypedFields {
                guard merged.fields[name] == nil, !merged.untypedFields.contains(name) else {
                    throw UsageError("--field \(name) is also in the schema file; declare it once")
                }
                merged.untypedFields.append(name)
            }
            result = merged
        }
        return result
    }

    /// The first line of `path`, without surrounding whitespace.
    private static func readToken(from path: String) throws -> String {
        let bytes = try readFile(path, what: "the --token-file")
        let line = String(decoding: bytes.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let token = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else {
            throw UsageError("the token file \(path) given with --token-file is empty; write the token on its first line")
        }
        guard !token.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw UsageError("the token in \(path) given with --token-file contains a control character; write it on one line")
        }
        return token
    }

    private static func readFile(_ path: String, what: String) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw UsageError("cannot read \(what) \(path) (\(String(cString: strerror(errno)))); check the path")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count > 0 { bytes.append(contentsOf: buffer[0..<count]) }
            if count < buffer.count { break }
        }
        return bytes
    }

    /// One line about what was received and dropped (logged at debug level on exit).
    static func summary(_ counters: ViewerCounters) -> String {
        let applied = counters.sessionUpdatesApplied + counters.configUpdatesApplied
        return "messages: \(counters.messagesReceived) received, \(applied) applied, \(counters.messagesDropped) dropped "
            + "(binary \(counters.binaryMessagesDropped), malformed \(counters.malformedMessagesDropped), "
            + "unknown type \(counters.unknownTypesDropped), config_update before state \(counters.configUpdatesBeforeState), "
            + "nothing accepted \(counters.configUpdatesRejected), oversized \(counters.oversizedMessagesDropped)); "
            + "config keys rejected: \(counters.rejectedFields)"
    }

    /// The stderr line for a connection change; nil for none.
    static func describe(_ state: ConnectionState, url: ViewerURL, problem: String?) -> String? {
        switch state {
        case .connecting: "connecting to \(url)"
        case .connected: "connected to \(url)"
        case let .reconnecting(attempt, delay):
            "\(problem ?? "connection lost"); reconnecting in \(formatted(delay)) s (attempt \(attempt))"
        case .closing: "closing the connection (code 1000)"
        case .disconnected: "disconnected"
        case .notAuthorized: nil
        }
    }
}

/// A mistake in the command line, as one sentence.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// "2", "4.5", "10.125": seconds without trailing zeros.
func formatted(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    return formatted(Double(seconds) + Double(attoseconds) / 1e18)
}

func formatted(_ seconds: Double) -> String {
    let millis = Int((seconds * 1000).rounded())
    var text = "\(millis / 1000)"
    let fraction = millis % 1000
    if fraction != 0 {
        var digits = String(fraction)
        digits = String(repeating: "0", count: 3 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        text += "." + digits
    }
    return text
}

/// SIGINT and SIGTERM as an async sequence of events.
final class SignalWatcher: Sendable {
    private let stream: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation
    // DispatchSource objects are not Sendable; they are created and cancelled
    // only through this object's init and stop(), and never touched otherwise.
    nonisolated(unsafe) private let sources: [any DispatchSourceSignal]

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        let continuation = self.continuation
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    /// Waits for the next signal and returns its number; nil when the watcher stopped (or the task was cancelled) first.
    func next() async -> Int32? {
        var iterator = stream.makeAsyncIterator()
        return await iterator.next()
    }

    func stop() {
        sources.forEach { $0.cancel() }
        continuation.finish()
    }
}
