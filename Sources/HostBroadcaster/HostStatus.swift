public import Envelope

/// What `GET /status` reports, and what ``HostBroadcaster/status`` returns.
public struct HostStatus: Sendable, Equatable {
    /// Whether the host is serving.
    public var running: Bool
    /// The port it listens on (the real one when started with port 0).
    public var port: Int
    /// A LAN address viewers on other machines can use, else `127.0.0.1`.
    public var localIp: String
    /// Viewers connected now.
    public var clientCount: Int
    /// The seq of the newest envelope.
    public var seq: Int64
    /// Seconds since `start`.
    public var uptimeSeconds: Double
    /// Further members an app adds to `/status` (a relay's `role`, `upstream`, `degraded`).
    public var extras: JSONObject = [:]

    /// The `/status` body of SPEC §3.
    public var json: JSONValue {
        var object: JSONObject = [
            "running": .bool(running),
            "port": .int(Int64(port)),
            "localIp": .string(localIp),
            "clientCount": .int(Int64(clientCount)),
            "seq": .int(seq),
            "uptimeSeconds": .double((uptimeSeconds * 1000).rounded() / 1000),
        ]
        for (key, value) in extras where object[key] == nil { object[key] = value }
        return .object(object)
    }
}
