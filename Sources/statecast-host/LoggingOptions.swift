import ArgumentParser
import Logging

/// What the host logs and how (`serve --help`'s "Logging" group).
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. libwebsockets' own lines show only at trace.")
    var logLevel: String = "info"

    @Option(help: "Log lines on stderr as text, or json (one object per line, metadata as members; the token never appears).")
    var logFormat: LogFormat = .text

    /// `--log-format`.
    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got \(logLevel)")
        }
    }
}
