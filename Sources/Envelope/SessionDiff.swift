/// What the host must send after a debounce window, given the state viewers
/// last received and the current state (SPEC §2).
///
/// Values compare by JSON equality (``JSONValue/==(_:_:)``): `1` and `1.0` are
/// the same value, and reordering an object's keys is not a change.
public enum SessionDiff: Sendable, Equatable {
    /// Nothing actually changed (the same values were written again): send nothing.
    case nothing
    /// Only config values changed or keys were added: exactly those keys with their new values,
    /// in the new config's order.
    case configUpdate(JSONObject)
    /// `name`, `data` or `metadata` changed, or a config key was removed: the full new state.
    case sessionUpdate(Session)

    /// Classifies the change from `old` to `new`.
    public init(from old: Session, to new: Session) {
        if old.name != new.name || old.data != new.data || JSONValue.object(old.metadata) != .object(new.metadata) {
            self = .sessionUpdate(new)
            return
        }
        // A removed key cannot be expressed by a merge, so it needs the full state.
        for key in old.config.keys where new.config[key] == nil {
            self = .sessionUpdate(new)
            return
        }
        var changed: JSONObject = [:]
        for (key, value) in new.config where old.config[key] != value {
            changed[key] = value
        }
        self = changed.isEmpty ? .nothing : .configUpdate(changed)
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
        switch self {
        case .nothing: nil
        case let .configUpdate(changes): Envelope(.configUpdate(changes), seq: seq, epoch: epoch)
        case let .sessionUpdate(session): Envelope(.sessionUpdate(session), seq: seq, epoch: epoch)
        }
    }
}
