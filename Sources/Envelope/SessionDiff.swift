/// What the host must send after a debounce window, given the state viewers
/// last received and the current state: the one classifier of SPEC §2, used
/// by the store, the debouncer's changes, the broadcaster and the relay.
///
/// - `name`, `data` or `metadata` changed, or a config key was added or
///   removed, or a config value changed its ``JSONKind``: ``sessionUpdate(_:)``.
///   (A viewer's derived whitelist comes from the last full state, so only a
///   full state may change the set of keys or their kinds.)
/// - Otherwise, config values changed: ``configUpdate(_:)`` with exactly those keys.
/// - Otherwise: ``nothing``.
///
/// Values compare by JSON equality (``JSONValue/==(_:_:)``): `1` and `1.0` are
/// the same value, and reordering an object's keys is not a change.
///
/// ```swift
/// SessionDiff(from: old, to: new)                                  // compares everything
/// SessionDiff(from: old, to: new, changedConfigKeys: ["speed"])    // only "speed" may differ
/// ```
public enum SessionDiff: Sendable, Equatable {
    /// Nothing actually changed (the same values were written again): send nothing.
    case nothing
    /// Only values of existing config keys changed, each keeping its kind:
    /// exactly those keys with their new values, in the new config's order.
    case configUpdate(JSONObject)
    /// Anything else changed: the full new state.
    case sessionUpdate(Session)

    /// Classifies the change from `old` to `new`.
    public init(from old: Session, to new: Session) {
        if old.name != new.name || old.data != new.data || JSONValue.object(old.metadata) != .object(new.metadata)
            || old.config.keys.contains(where: { new.config[$0] == nil }) {
            self = .sessionUpdate(new)
            return
        }
        self = Self.classifyConfig(from: old, to: new, keys: new.config.keys)
    }

    /// Classifies a change the caller knows is confined to the config keys
    /// `keys` (everything else in `old` and `new` is equal), without comparing
    /// the rest: the cheap path for a batch of config changes.
    public init(from old: Session, to new: Session, changedConfigKeys keys: some Sequence<String>) {
        self = Self.classifyConfig(from: old, to: new, keys: keys)
    }

    /// How one config key's change counts (nil: the key is absent).
    public enum KeyChange: Sendable, Equatable {
        /// The same value (JSON equality): nothing to send.
        case unchanged
        /// A new value of the same ``JSONKind``: a `config_update` can carry it.
        case value
        /// The key was added or removed, or its value changed kind: only a `session_update` can.
        case shape
    }

    /// The rule for one config key going from `old` to `new` (nil: absent).
    public static func keyChange(from old: JSONValue?, to new: JSONValue?) -> KeyChange {
        if old == new { return .unchanged }
        guard let old, let new, old.kind == new.kind else { return .shape }
        return .value
    }

    private static func classifyConfig(from old: Session, to new: Session, keys: some Sequence<String>) -> SessionDiff {
        var changed: JSONObject = [:]
        for key in keys {
            let after = new.config[key]
            switch keyChange(from: old.config[key], to: after) {
            case .unchanged: continue
            case .shape: return .sessionUpdate(new)
            case .value: changed[key] = after
            }
        }
        guard !changed.isEmpty else { return .nothing }
        // In the new config's order, whatever order `keys` came in.
        if changed.count > 1 {
            changed.sort { (new.config.index(forKey: $0.key) ?? 0) < (new.config.index(forKey: $1.key) ?? 0) }
        }
        return .configUpdate(changed)
    }

    /// Equal when the cases match and their contents are JSON-equal (key order ignored).
    public static func == (lhs: SessionDiff, rhs: SessionDiff) -> Bool {
        switch (lhs, rhs) {
        case (.nothing, .nothing): true
        case let (.configUpdate(a), .configUpdate(b)): JSONValue.object(a) == .object(b)
        case let (.sessionUpdate(a), .sessionUpdate(b)): a == b
        default: false
        }
    }

    /// The envelope to send for this change with the given `seq`/`epoch`, or nil for ``nothing``.
    public func envelope(seq: Int64? = nil, epoch: String? = nil) -> Envelope? {
        payload.map { Envelope($0, seq: seq, epoch: epoch) }
    }

    /// The payload to send for this change, or nil for ``nothing``.
    public var payload: Envelope.Payload? {
        switch self {
        case .nothing: nil
        case let .configUpdate(changes): .configUpdate(changes)
        case let .sessionUpdate(session): .sessionUpdate(session)
        }
    }
}
