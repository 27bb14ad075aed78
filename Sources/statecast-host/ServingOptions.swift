import ArgumentParser
import Foundation
import HostBroadcaster
import Logging

/// How a host or a relay serves viewers: the options `serve` and `relay` share.
struct ServingOptions: ParsableArguments {
    @Option(help: "TCP port to listen on (0 picks a free one).")
    var port: Int = 9876

    @Option(help: "Address to listen on (0.0.0.0: every IPv4 interface); a host name such as localhost is resolved at start.")
    var bind: String = "0.0.0.0"

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

    @Option(help: "PEM private key for --tls-cert, unencrypted (the host cannot ask for a passphrase).")
    var tlsKey: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        // Upper bounds keep every product (KiB × 1024, seconds × 10^6) far from overflow.
        try Self.check(port, 0...65535, "--port")
        try Self.check(clientPollMs, 10...86_400_000, "--client-poll-ms")
        try Self.check(pingIntervalS, 1...86_399, "--ping-interval-s")
        try Self.check(pingTimeoutS, 2...86_400, "--ping-timeout-s")
        guard pingTimeoutS > pingIntervalS else {
            throw ValidationError("--ping-timeout-s (\(pingTimeoutS)) must be longer than --ping-interval-s (\(pingIntervalS))")
        }
        try Self.check(maxViewerBufferKb, 1...4_194_304, "--max-viewer-buffer-kb")
        guard sseKeepaliveS.isFinite else { throw ValidationError("--sse-keepalive-s must be a number of seconds, got \(sseKeepaliveS)") }
        try Self.check(sseKeepaliveS, 0.1...86_400, "--sse-keepalive-s")
        try Self.check(maxMessageKb, 1...1_048_576, "--max-message-kb")
        if token != nil && tokenFile != nil { throw ValidationError("give either --token or --token-file, not both") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together; give both or neither") }
        if let maxClients, maxClients < 1 { throw ValidationError("--max-clients must be at least 1, got \(maxClients)") }
        if let echoPath, !echoPath.hasPrefix("/") { throw ValidationError("--echo-path must start with /, e.g. /echo") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got \(logLevel)")
        }
    }

    /// Whether `--bind` names this machine's loopback (only this machine can connect).
    static func isLoopback(_ bind: String) -> Bool {
        bind.hasPrefix("127.") || bind == "localhost" || bind == "::1"
    }

    /// Throws a ValidationError (exit code 64, like every bad value) naming `flag` and its range.
    static func check<Value: Comparable>(_ value: Value, _ range: ClosedRange<Value>, _ flag: String) throws {
        guard range.contains(value) else {
            throw ValidationError("\(flag) must be from \(range.lowerBound) to \(range.upperBound), got \(value)")
        }
    }

    /// Sends every log line to stderr at the chosen level (executables only bootstrap logging).
    func bootstrapLogging(label: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }

    /// The host's configuration and the token in force; exits 2 on an unreadable token file.
    func hostConfiguration() throws -> (HostConfiguration, token: String?) {
        let secret = try resolveToken()
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
        return (configuration, secret)
    }

    /// --token, else --token-file, else STATECAST_TOKEN.
    private func resolveToken() throws -> String? {
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

    /// The "Serving …" line (tests and scripts read its port) and the URLs viewers can use.
    func announce(name: String, port actualPort: Int, token: String?) {
        let scheme = tlsCert == nil ? "ws" : "wss"
        let lan = NetworkInterfaces.lanIPv4Addresses().filter { bind == "0.0.0.0" || bind == $0 }
        Console.out("Serving \"\(name)\" on \(bind):\(actualPort)")
        Console.out("Viewers can connect to:")
        for address in lan { Console.out("  \(scheme)://\(address):\(actualPort)/") }
        if bind == "0.0.0.0" || Self.isLoopback(bind) { Console.out("  \(scheme)://localhost:\(actualPort)/") }
        let page = tlsCert == nil ? "http" : "https"
        Console.out("Browsers: \(page)://\(lan.first ?? "localhost"):\(actualPort)/")
        if token != nil { Console.out("Viewers must present the token (Authorization: Bearer … or ?token=…).") }
    }
}
