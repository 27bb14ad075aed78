public import Envelope

/// One host message that changed the viewer's state.
public struct AppliedChange: Sendable, Equatable {
    /// The envelope's `seq`, nil when the host sent none.
    public var seq: Int64?
    /// The envelope's `type`: `session_update` or `config_update`.
    public var type: String
    /// For `session_update`: the session members (`name`, `data`, `config`,
    /// `metadata`) whose value differs from the previous state — all four for
    /// the first state. For `config_update`: the config keys the whitelist
    /// accepted and that were merged, in message order.
    public var changedKeys: [String]
    /// The whole state after the change.
    public var session: Session

    /// Creates a change record.
    public init(seq: Int64?, type: String, changedKeys: [String], session: Session) {
        self.seq = seq
        self.type = type
        self.changedKeys = changedKeys
        self.session = session
    }

    /// The JSON line the viewer CLI prints for this change:
    /// `{"seq":…,"type":…,"changed":[…],"state":{…}}` (`seq` is null when absent).
    public var json: JSONValue {
        .object([
            "seq": seq.map { .int($0) } ?? .null,
            "type": .string(type),
            "changed": .array(changedKeys.map { .string($0) }),
            "state": session.json,
        ])
    }
}
