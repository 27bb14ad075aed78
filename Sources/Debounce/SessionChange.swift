public import Envelope

/// What changed in a session since the last emission, coalesced.
///
/// A debounce window starts from nothing and merges every change submitted
/// during the window; the result decides what the host sends (SPEC §2):
/// `.config` becomes one `config_update` with exactly those keys, `.full`
/// becomes one `session_update`.
///
/// ```swift
/// var change = SessionChange.config(["speed": .double(1.0)])
/// change.merge(.config(["speed": .double(1.5), "mode": .string("wave")]))
/// // .config(["speed": 1.5, "mode": "wave"])
/// change.merge(.full)
/// // .full
/// ```
public enum SessionChange: Sendable {
    /// Changed config keys and their new values (last value wins on merge).
    case config(JSONObject)
    /// A structural change (`name`, `data` or `metadata`), a config key added
    /// or removed, or a config value changing its JSON kind (``SessionDiff``):
    /// the batch becomes a full `session_update`.
    case full

    /// Whether this change carries nothing: an empty `.config`.
    ///
    /// Debouncers ignore empty changes, so they never emit one.
    public var isEmpty: Bool {
        if case .config(let values) = self { return values.isEmpty }
        return false
    }

    /// Folds a newer change into this one.
    ///
    /// `.full` absorbs everything; two `.config` changes merge key by key,
    /// the newer value winning and new keys appended after the existing ones.
    public mutating func merge(_ newer: SessionChange) {
        guard case .config(let newValues) = newer else {
            self = .full
            return
        }
        guard case .config(var values) = self else { return }
        // Drop our own reference first so `values` is uniquely referenced and
        // the merge mutates it in place instead of copying every key.
        self = .full
        values.merge(newValues) { _, newer in newer }
        self = .config(values)
    }

    /// This change with a newer one folded in; see ``merge(_:)``.
    public func merging(_ newer: SessionChange) -> SessionChange {
        var result = self
        result.merge(newer)
        return result
    }
}

extension SessionChange: Equatable {
    /// Equal when both are `.full`, or both are `.config` with the same keys
    /// and JSON-equal values; key order does not matter (as for JSON objects).
    public static func == (lhs: SessionChange, rhs: SessionChange) -> Bool {
        switch (lhs, rhs) {
        case (.full, .full): return true
        case let (.config(a), .config(b)): return JSONValue.object(a) == JSONValue.object(b)
        default: return false
        }
    }
}
