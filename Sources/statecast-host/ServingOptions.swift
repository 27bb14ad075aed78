import ArgumentParser
import Foundation
import HostBroadcaster
import Logging

/// How a host or a relay serves viewers: the options `serve` and `relay` share,
/// in the groups their help shows (each group checks its own values).
struct ServingOptions: ParsableArguments {
    @OptionGroup(title: "Serving") var network: NetworkOptions

    @OptionGroup(title: "Limits") var limits: LimitOptions

    @OptionGroup(title: "Security") var security: SecurityOptions

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    @Flag(help: "Print the effective settings (command line, then STATECAST_* environment variables, then defaults) and exit.")
    var printConfig = false

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

    /// Sends every log line to stderr at the chosen level and format (executables
    /// only bootstrap logging); `secret` is kept out of JSON lines.
    func bootstrapLogging(label: String, secret: String?) -> Logger {
        let level = Logger.Level(rawValue: logging.logLevel) ?? .info
        let format = logging.logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label, secret: secret)
                handler.logLevel = level
                return handler
            }
        }
        return Logger(label: label)
    }

    /// `--print-config`: prints the effective settings; true when the command should stop there.
    func printedConfiguration() -> Bool {
        if printConfig { Console.out(EnvironmentOptions.current.description) }
        return printConfig
    }

    /// The host's configuration and the token in force; exits 2 on an unreadable token file.
    func hostConfiguration() throws -> (HostConfiguration, token: String?) {
        let secret = try resolveToken()
        var configuration = HostConfiguration()
        configuration.token = secret
        configuration.allowedOrigins = security.allowOrigin
        configuration.maxClients = limits.maxClients
        configuration.echoPath = network.echoPath
        configuration.tlsCertificatePath = security.tlsCert
        configuration.tlsKeyPath = security.tlsKey
        configuration.port = network.port
        configuration.bindAddress = network.bind
        configuration.clientPollInterval = .milliseconds(network.clientPollMs)
        configuration.pingInterval = .seconds(limits.pingIntervalS)
        configuration.pingTimeout = .seconds(limits.pingTimeoutS)
        configuration.maxViewerBacklogBytes = limits.maxViewerBufferKb * 1024
        configuration.maxIncomingMessageBytes = limits.maxMessageKb * 1024
        configuration.sseKeepaliveInterval = .milliseconds(Int64((limits.sseKeepaliveS * 1000).rounded()))
        configuration.onClientCountChange = { count in
            Console.out(count == 1 ? "1 viewer connected" : "\(count) viewers connected")
        }
        return (configuration, secret)
    }

    /// --token, else --token-file, else STATECAST_TOKEN.
    private func resolveToken() throws -> String? {
        if let token = security.token { return token }
        if let tokenFile = security.tokenFile {
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
        let scheme = security.tlsCert == nil ? "ws" : "wss"
        let lan = NetworkInterfaces.lanIPv4Addresses().filter { network.bind == "0.0.0.0" || network.bind == $0 }
        Console.out("Serving \"\(name)\" on \(network.bind):\(actualPort)")
        Console.out("Viewers can connect to:")
        for address in lan { Console.out("  \(scheme)://\(address):\(actualPort)/") }
        if network.bind == "0.0.0.0" || Self.isLoopback(network.bind) { Console.out("  \(scheme)://localhost:\(actualPort)/") }
        let page = security.tlsCert == nil ? "http" : "https"
        Console.out("Browsers: \(page)://\(lan.first ?? "localhost"):\(actualPort)/")
        if token != nil { Console.out("Viewers must present the token (Authorization: Bearer … or ?token=…).") }
    }
}
