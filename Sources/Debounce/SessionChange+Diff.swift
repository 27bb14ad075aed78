public import Envelope

extension SessionChange {
    /// The change that turns `old` into `new`, or `nil` when nothing changed.
    ///
    /// Anything other than `config` changing, or a config key being removed,
    /// gives `.full`; otherwise the config keys whose values changed (JSON
    /// equality, so `1` and `1.0` are the same) give `.config`.
    ///
    /// ```swift
    /// if let change = SessionChange(from: current, to: updated) {
    ///     debouncer.submit(change)
    /// }
    /// ```
    public init?(from old: Session, to new: Session) {
        if old.name != new.name
            || old.data != new.data
            || JSONValue.object(old.metadata) != JSONValue.object(new.metadata)
            || old.config.keys.contains(where: { new.config[$0] == nil })
        {
            self = .full
            return
        }
        let changed = new.config.filter { key, value in old.config[key] != value }
        guard !changed.isEmpty else { return nil }
        self = .config(changed)
    }
}
