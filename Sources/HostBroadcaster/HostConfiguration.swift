public import Envelope

/// How a ``HostBroadcaster`` listens, paces heartbeats and bounds memory.
///
/// ```swift
/// var configuration = HostConfiguration()
/// configuration.port = 0                      // any free port; read it back from `status.port`
/// configuration.bindAddress = "127.0.0.1"
/// ```
public struct HostConfiguration: Sendable {
    /// Address to listen on: an IP literal, a host name (resolved at start,
    /// IPv4 first), an interface name, `"0.0.0.0"` (every IPv4 interface), or
    /// `nil` for every interface. ``HostBroadcaster/start(initial:)`` throws
    /// when nothing can be bound there.
    public var bindAddress: String? = "0.0.0.0"
    /// TCP port; `0` lets the kernel pick a free one.
    public var port: Int = 9876
    /// How often the host checks its viewer count for `onClientCountChange`.
    public var clientPollInterval: Duration = .seconds(2)
    /// A viewer silent for this long is pinged.
    public var pingInterval: Duration = .seconds(30)
    /// A viewer silent for this long is hung up on.
    public var pingTimeout: Duration = .seconds(60)
    /// Most bytes of updates held for viewers that are behind, and for resuming
    /// viewers (the history). A viewer further behind than this loses its queued
    /// updates and gets one fresh `session_update`. 1 MiB holds thousands of
    /// slider changes (a config_update is ~50–200 bytes), so a phone that drops
    /// off for a minute resumes with one small message.
    public var maxViewerBacklogBytes: Int = 1 << 20
    /// Most updates held for viewers that are behind (a second bound beside the bytes).
    public var maxViewerBacklogCount: Int = 4096
    /// Largest message a viewer may send; a bigger one closes it with 1009.
    public var maxIncomingMessageBytes: Int = 64 * 1024
    /// Seconds a connection may take to finish its handshake.
    public var handshakeTimeoutSeconds: Int = 10
    /// Seq of the initial state; `nil` (the default) takes the wall-clock time in ms.
    public var initialSeq: Int64?
    /// Epoch of the initial state; `nil` (the default) picks a random one. A relay
    /// passes its upstream's.
    public var initialEpoch: String?
    /// Called with every envelope this host broadcasts (after its seq is assigned)
    /// and the state after it, under the host's lock: keep it short (enqueue).
    /// A host that publishes to Redis hangs its publisher here.
    public var onBroadcast: (@Sendable (Envelope, Session) -> Void)?
    /// How often an idle Server-Sent Events stream gets a `: keepalive` comment.
    public var sseKeepaliveInterval: Duration = .seconds(30)
    /// Shared secret viewers must present (`Authorization: Bearer …` or `?token=…`);
    /// `nil` lets anyone on the network connect.
    public var token: String?
    /// Browser origins allowed to open a viewer (exact match, e.g. `https://app.example`);
    /// empty allows any origin.
    public var allowedOrigins: [String] = []
    /// Most viewers at once; past it an upgrade gets HTTP 503. `nil`: no limit.
    public var maxClients: Int?
    /// Path of an opt-in WebSocket echo endpoint for debugging (e.g. `/echo`); `nil`: off.
    public var echoPath: String?
    /// PEM certificate and key files: with both, the host serves `wss://` and `https://`.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// Called (on the host's service thread) when the polled viewer count changes.
    public var onClientCountChange: (@Sendable (Int) -> Void)?

    public init() {}
}
