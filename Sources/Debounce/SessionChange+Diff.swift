public import Envelope

extension SessionChange {
    /// The change that turns `old` into `new`, or `nil` when nothing changed,
    /// as ``SessionDiff`` (the one classifier of SPEC §2) decides it.
    ///
    /// ```swift
    /// if let change = SessionChange(from: current, to: updated) {
    ///     debouncer.submit(change)
    /// }
    /// ```
    public init?(from old: Session, to new: Session) {
        self.init(SessionDiff(from: old, to: new))
    }

    /// The change for a classification: `.full` for a `session_update`,
    /// `.config` for a `config_update`, `nil` for nothing.
    public init?(_ diff: SessionDiff) {
        switch diff {
        case .nothing: return nil
        case .configUpdate(let changes): self = .config(changes)
        case .sessionUpdate: self = .full
        }
    }
}
