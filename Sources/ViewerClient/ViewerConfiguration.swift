public import Envelope

/// How a ``ViewerClient`` connects, stays connected and applies messages.
///
/// ```swift
/// var configuration = ViewerConfiguration()
/// configuration.schema = try FieldSchema(fieldSpecs: ["speed:number"])
/// configuration.pingInterval = .seconds(1)
/// configuration.pingTimeout = .seconds(2)
/// ```
public struct ViewerConfiguration: Sendable {
    /// The explicit whitelist for `config_update`; nil (the default) derives
    /// it from the config of the last full state.
    public var schema: FieldSchema?
    /// The reconnect schedule (2 s ×1.5 up to 15 s, ±20 % jitter by default).
    /// Set `backoff.jitter = 0` for an exact schedule.
    public var backoff = ReconnectBackoff()
    /// With several URLs (a host and its relays): how long to wait before
    /// trying the next URL after one fails, jittered like the backoff so that
    /// the viewers of a relay that died do not all arrive at once. The backoff
    /// applies only once every URL has failed in a row. Default 250 ms.
    public var failoverDelay: Duration = .milliseconds(250)
    /// Idle time after which the viewer pings the host. Whole seconds, at least 1. Default 30 s.
    public var pingInterval: Duration = .seconds(30)
    /// Time without any sign of life after which the viewer hangs up and
    /// reconnects. Whole seconds, greater than ``pingInterval``. Default 60 s.
    public var pingTimeout: Duration = .seconds(60)
    /// How long a connection attempt (TCP connect plus handshake) may take. Default 10 s.
    public var connectTimeout: Duration = .seconds(10)
    /// How long `disconnect()` waits for the host to answer close 1000. Default 5 s.
    public var closeTimeout: Duration = .seconds(5)
    /// Whether reconnects ask the host to resume (`?since=SEQ&epoch=EPOCH`,
    /// docs/PROTOCOL.md §4) so that it sends only what changed while the
    /// viewer was away. Default true; hosts that do not know the query send
    /// the full state anyway.
    public var resumes = true
    /// The largest message the viewer takes. A larger one is counted and the
    /// viewer closes the connection with 1009 (message too big) as soon as
    /// the bytes received pass the limit, without buffering them, then
    /// reconnects on the usual schedule. Default 16 MiB.
    public var maximumMessageBytes = 16 << 20
    /// How many applied changes each ``ViewerClient/changes`` stream buffers
    /// for a consumer that is behind. Past it the oldest buffered change is
    /// dropped (the newest never is), so what a host can make the viewer hold
    /// stays bounded by this many sessions. At least 1. Default 8.
    public var changeBufferLimit = 8
    /// The clock that times reconnect delays and the close timeout (tests inject a manual one).
    public var clock: any Clock<Duration> = ContinuousClock()
    /// The random source for reconnect jitter (tests inject a seeded one).
    public var randomSource: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()

    /// The defaults described on each property.
    /// Token the host requires: sent as `Authorization: Bearer …` (never logged).
    public var token: String?
    /// PEM file of the CA that signed a `wss://` host's certificate; `nil`: the system's CAs.
    public var certificateAuthorityFile: String?
    /// Skip certificate verification for `wss://` (self-signed, expired, other name). Unsafe.
    public var allowsInsecureTLS = false

    public init() {}

    /// Checks the values and returns the ping policy in whole seconds.
    func validatedPingSeconds() throws(ViewerError) -> (ping: UInt16, hangup: UInt16) {
        func wholeSeconds(_ duration: Duration) -> Double { duration.seconds.rounded(.up) }
        let ping = wholeSeconds(pingInterval)
        let hangup = wholeSeconds(pingTimeout)
        guard ping >= 1, ping <= 32767 else {
            throw .invalidConfiguration(
                "the ping interval (\(formatSeconds(pingInterval)) s) is out of range",
                fix: "give a whole number of seconds from 1 to 32767, for example 30"
            )
        }
        guard hangup > ping, hangup <= 65535 else {
            throw .invalidConfiguration(
                "the ping timeout (\(Int(hangup)) s) must be longer than the ping interval (\(Int(ping)) s)",
                fix: "give a timeout above the interval, for example an interval of 30 s and a timeout of 60 s"
            )
        }
        guard connectTimeout >= .seconds(1) else {
            throw .invalidConfiguration("the connect timeout is below 1 s", fix: "give at least 1 s, for example 10 s")
        }
        guard maximumMessageBytes >= 1024 else {
            throw .invalidConfiguration("the maximum message size is below 1 KiB", fix: "give at least 1024 bytes")
        }
        guard changeBufferLimit >= 1 else {
            throw .invalidConfiguration("the change buffer limit is below 1", fix: "give at least 1, for example 8")
        }
        return (UInt16(ping), UInt16(hangup))
    }
}
