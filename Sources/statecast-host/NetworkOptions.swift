import ArgumentParser

/// Where a host or relay listens (`serve --help`'s "Serving" group).
struct NetworkOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "TCP port to listen on (0 picks a free one).")
    var port: Int = 9876

    @Option(help: "Address to listen on (0.0.0.0: every IPv4 interface); a host name such as localhost is resolved at start.")
    var bind: String = "0.0.0.0"

    @Option(help: "How often to check the viewer count for the status line (milliseconds).")
    var clientPollMs: Int = 2000

    @Option(help: "Serve a WebSocket echo endpoint at this path for debugging (e.g. /echo). Off by default.")
    var echoPath: String?

    func validate() throws {
        try ServingOptions.check(port, 0...65535, "--port")
        try ServingOptions.check(clientPollMs, 10...86_400_000, "--client-poll-ms")
        if let echoPath, !echoPath.hasPrefix("/") { throw ValidationError("--echo-path must start with /, e.g. /echo") }
    }
}
