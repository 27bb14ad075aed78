import ArgumentParser

/// How long a silent viewer may stay and how much it may cost (`serve --help`'s "Limits" group).
struct LimitOptions: ParsableArguments {
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

    @Option(help: "Most viewers at once; the next upgrade gets HTTP 503.")
    var maxClients: Int?

    func validate() throws {
        // Upper bounds keep every product (KiB × 1024, seconds × 10^6) far from overflow.
        try ServingOptions.check(pingIntervalS, 1...86_399, "--ping-interval-s")
        try ServingOptions.check(pingTimeoutS, 2...86_400, "--ping-timeout-s")
        guard pingTimeoutS > pingIntervalS else {
            throw ValidationError("--ping-timeout-s (\(pingTimeoutS)) must be longer than --ping-interval-s (\(pingIntervalS))")
        }
        try ServingOptions.check(maxViewerBufferKb, 1...4_194_304, "--max-viewer-buffer-kb")
        guard sseKeepaliveS.isFinite else { throw ValidationError("--sse-keepalive-s must be a number of seconds, got \(sseKeepaliveS)") }
        try ServingOptions.check(sseKeepaliveS, 0.1...86_400, "--sse-keepalive-s")
        try ServingOptions.check(maxMessageKb, 1...1_048_576, "--max-message-kb")
        if let maxClients, maxClients < 1 { throw ValidationError("--max-clients must be at least 1, got \(maxClients)") }
    }
}
