/// The trailing debounce of SPEC §3 as a pure state machine: no I/O, no clock
/// reading, no timer of its own.
///
/// The driver tells it when a change arrives (``submit(_:at:)``) and when its
/// one timer fires (``timerFired(at:)``), passing the current instant, and
/// carries out the returned ``Action``. A batch is emitted `interval` after
/// its last change, or `maxWait` after its first change, whichever comes
/// first. An `interval` of zero (or a `maxWait` of zero) disables debouncing:
/// every change is emitted at once.
///
/// The timer is re-armed lazily: while a batch keeps growing, ``submit(_:at:)``
/// returns `.none` and leaves the armed timer alone; when it fires early,
/// ``timerFired(at:)`` answers `.schedule(at:)` with the real deadline. So a
/// stream of changes costs one timer per batch, not one per change.
///
/// ```swift
/// var machine = DebounceStateMachine<ContinuousClock.Instant>(interval: .milliseconds(250), maxWait: nil)
/// switch machine.submit(.config(["speed": .double(1.5)]), at: clock.now) {
/// case .none: break
/// case .schedule(let deadline): armTimer(until: deadline)   // later: machine.timerFired(at: clock.now)
/// case .emit(let change): send(change)
/// }
/// ```
public struct DebounceStateMachine<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// What the driver must do after an event.
    public enum Action: Sendable, Equatable {
        /// Nothing.
        case none
        /// (Re)arm the one timer for this instant, replacing any armed timer,
        /// then call ``DebounceStateMachine/timerFired(at:)`` when it fires.
        case schedule(at: Instant)
        /// Deliver this batch now.
        case emit(SessionChange)
    }

    /// Quiet time after the last change of a batch before it is emitted.
    public let interval: Duration
    /// Longest time a batch may wait after its first change; `nil` for no bound.
    public let maxWait: Duration?

    /// The batch collected so far, if any.
    @inlinable public var pending: SessionChange? { _pending }
    /// When the driver's timer is armed for (the last `.schedule(at:)` not yet
    /// answered by ``timerFired(at:)``), or `nil` when no timer should run.
    @inlinable public var armedTimer: Instant? { _armedTimer }

    // Inlinable, so that a driver in another module gets code specialised
    // for its clock instead of generic code looking up type metadata on
    // every change.
    @usableFromInline var _pending: SessionChange?
    @usableFromInline var _armedTimer: Instant?
    @usableFromInline var firstChange: Instant?
    @usableFromInline var lastChange: Instant?

    /// A machine emitting `interval` after the last change, and at the latest
    /// `maxWait` after the first change of a batch.
    ///
    /// Negative durations count as zero; zero for either disables debouncing.
    @inlinable
    public init(interval: Duration, maxWait: Duration?) {
        self.interval = max(interval, .zero)
        self.maxWait = maxWait.map { max($0, .zero) }
    }

    /// Whether every change is emitted as soon as it is submitted (`interval`
    /// or `maxWait` is zero). Then ``submit(_:at:)`` only ever returns `.emit`
    /// or `.none`; otherwise it never returns `.emit`.
    @inlinable
    public var emitsImmediately: Bool {
        interval == .zero || maxWait == .zero
    }

    /// When the pending batch is due, or `nil` if nothing is pending.
    @inlinable
    public var deadline: Instant? {
        guard _pending != nil, let firstChange, let lastChange else { return nil }
        let quiet = lastChange.advanced(by: interval)
        guard let maxWait else { return quiet }
        return min(quiet, firstChange.advanced(by: maxWait))
    }

    /// A change arrived at `now`.
    ///
    /// Returns `.emit` right away when debouncing is disabled, `.schedule(at:)`
    /// when the timer must be armed (first change of a batch, or a deadline
    /// earlier than the armed timer), else `.none`. Empty changes are ignored.
    @inlinable
    public mutating func submit(_ change: SessionChange, at now: Instant) -> Action {
        guard !change.isEmpty else { return .none }
        if emitsImmediately {
            let batch = _pending.map { $0.merging(change) } ?? change
            resetBatch()
            return .emit(batch)
        }
        if _pending == nil {
            _pending = change
            firstChange = now
            lastChange = now
        } else {
            _pending!.merge(change)
            // max: tolerate an instant read out of order by a concurrent caller.
            lastChange = lastChange.map { max($0, now) } ?? now
        }
        let due = deadline!
        if let _armedTimer, _armedTimer <= due {
            return .none  // the armed timer fires first and reschedules
        }
        _armedTimer = due
        return .schedule(at: due)
    }

    /// The armed timer fired at `now`.
    ///
    /// Returns `.emit` with the batch if its deadline has passed,
    /// `.schedule(at:)` with the real deadline if changes arrived since the
    /// timer was armed, or `.none` if nothing is pending (flushed or cancelled).
    @inlinable
    public mutating func timerFired(at now: Instant) -> Action {
        _armedTimer = nil
        guard let due = deadline, let batch = pending else { return .none }
        if now >= due {
            resetBatch()
            return .emit(batch)
        }
        _armedTimer = due
        return .schedule(at: due)
    }

    /// Takes the pending batch now, if any.
    ///
    /// An armed timer stays armed; when it fires with nothing pending,
    /// ``timerFired(at:)`` returns `.none`.
    @inlinable
    public mutating func flush() -> SessionChange? {
        let batch = pending
        resetBatch()
        return batch
    }

    /// Drops the pending batch and disarms the timer: the driver cancels its
    /// timer and does not call ``timerFired(at:)`` for it.
    @inlinable
    public mutating func cancel() {
        resetBatch()
        _armedTimer = nil
    }

    @inlinable
    mutating func resetBatch() {
        _pending = nil
        firstChange = nil
        lastChange = nil
    }
}
