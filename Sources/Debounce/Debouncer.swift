public import StateCastSupport  // public: `Locked` is stored by inlinable code

/// Runs a ``DebounceStateMachine`` on an injected clock, from any thread.
///
/// Every change submitted lands in exactly one emission, unless ``cancel()``
/// drops it or it is empty. Emissions are
/// delivered one at a time and in order: `onEmit` is never called twice
/// concurrently, and a later batch is never delivered before an earlier one.
/// A timed emission runs `onEmit` on a task; ``flush()`` and, with
/// debouncing disabled, ``submit(_:)`` run it synchronously on the caller's
/// thread before returning.
///
/// One task sleeps on the clock while a batch is pending; it is re-armed by
/// the state machine, not spawned per change, and an interval of zero never
/// creates a task at all. Dropping the debouncer cancels that task and drops
/// the pending batch (call ``flush()`` first to keep it).
///
/// ```swift
/// let debouncer = Debouncer(interval: .milliseconds(250), maxWait: .seconds(1)) { change in
///     broadcaster.publish(change)
/// }
/// debouncer.submit(.config(["speed": .double(1.5)]))
/// ```
///
/// `onEmit` runs under the lock that serialises emissions, so it must not
/// call ``flush()``, nor ``submit(_:)`` on a debouncer that emits
/// immediately (the lock is not recursive). Submitting to a debouncer with a
/// positive interval, and ``cancel()``, are fine from `onEmit`.
public final class Debouncer<C: Clock>: Sendable where C.Duration == Duration {
    // `submit` and `flush` are inlinable, with what they touch, so that a
    // caller in another module gets code specialised for its clock instead of
    // generic code looking up type metadata on every change.

    @usableFromInline
    struct State: Sendable {
        @usableFromInline var machine: DebounceStateMachine<C.Instant>
        /// The one timer task, while the machine has a timer armed.
        @usableFromInline var timer: Task<Void, Never>?
        /// Identifies `timer`; a task whose generation is stale just exits.
        @usableFromInline var timerGeneration: UInt64 = 0

        @inlinable
        init(machine: DebounceStateMachine<C.Instant>) {
            self.machine = machine
        }
    }

    @usableFromInline let clock: C
    @usableFromInline let onEmit: @Sendable (SessionChange) -> Void
    @usableFromInline let emitsImmediately: Bool
    @usableFromInline let state: Locked<State>
    /// Held while a batch is taken from the machine and handed to `onEmit`,
    /// so emissions never overlap and arrive in the order they were taken.
    /// Lock order: `delivery` before `state`; `state` is never held during
    /// `onEmit`, so submitters with debouncing on never wait for delivery.
    @usableFromInline let delivery = Locked<Void>(())

    /// A debouncer emitting `interval` after the last change (250 ms by
    /// default), at the latest `maxWait` after the first change of a batch,
    /// timed on `clock`. Zero for either duration disables debouncing.
    public init(
        interval: Duration = .milliseconds(250),
        maxWait: Duration? = nil,
        clock: C,
        onEmit: @escaping @Sendable (SessionChange) -> Void
    ) {
        let machine = DebounceStateMachine<C.Instant>(interval: interval, maxWait: maxWait)
        self.clock = clock
        self.onEmit = onEmit
        self.emitsImmediately = machine.emitsImmediately
        self.state = Locked(State(machine: machine))
    }

    deinit {
        state.withLock { $0.timer }?.cancel()
    }

    /// Adds a change to the pending batch (or, with debouncing disabled,
    /// emits it before returning). Empty changes are ignored.
    @inlinable
    public func submit(_ change: SessionChange) {
        if emitsImmediately {
            // Take the batch and deliver it in one go, without touching tasks.
            delivery.withLock { _ in
                let action = state.withLock { $0.machine.submit(change, at: clock.now) }
                if case .emit(let batch) = action { onEmit(batch) }
            }
            return
        }
        let replaced: Task<Void, Never>? = state.withLock { state in
            switch state.machine.submit(change, at: clock.now) {
            case .none:
                return nil
            case .emit:
                // Taking a batch needs `delivery` held; the machine never emits
                // from submit unless it emits immediately (handled above).
                preconditionFailure("DebounceStateMachine emitted from submit with debouncing on")
            case .schedule(let deadline):
                let previous = state.timer
                state.timerGeneration &+= 1
                state.timer = startTimer(until: deadline, generation: state.timerGeneration)
                return previous
            }
        }
        replaced?.cancel()
    }

    /// Emits the pending batch now, synchronously, if there is one.
    ///
    /// When it returns, every change submitted before the call has been
    /// delivered to `onEmit` (an emission already under way on another thread
    /// is waited for), unless ``cancel()`` dropped it.
    @inlinable
    public func flush() {
        delivery.withLock { _ in
            if let batch = state.withLock({ $0.machine.flush() }) { onEmit(batch) }
        }
    }

    /// Drops the pending batch without emitting it and stops the timer.
    public func cancel() {
        let timer: Task<Void, Never>? = state.withLock { state in
            state.machine.cancel()
            state.timerGeneration &+= 1
            defer { state.timer = nil }
            return state.timer
        }
        timer?.cancel()
    }

    /// Whether a timer task is running (for tests).
    var hasTimer: Bool {
        state.withLock { $0.timer != nil }
    }

    // MARK: - Timer

    /// Must be called with `state` locked.
    @usableFromInline
    func startTimer(until deadline: C.Instant, generation: UInt64) -> Task<Void, Never> {
        Task { [weak self, clock] in
            var deadline = deadline
            while true {
                do {
                    try await clock.sleep(until: deadline, tolerance: nil)
                } catch {
                    return  // cancelled
                }
                guard let self, let next = self.timerFired(generation: generation) else { return }
                deadline = next
            }
        }
    }

    /// Runs the machine's timer event; returns the next deadline to sleep
    /// until, or `nil` when the timer task should end.
    private func timerFired(generation: UInt64) -> C.Instant? {
        delivery.withLock { _ in
            let action: DebounceStateMachine<C.Instant>.Action = state.withLock { state in
                guard state.timerGeneration == generation else { return .none }
                let action = state.machine.timerFired(at: clock.now)
                switch action {
                case .schedule: break  // this task sleeps again
                case .none, .emit: state.timer = nil  // this task ends
                }
                return action
            }
            switch action {
            case .none:
                return nil
            case .emit(let batch):
                onEmit(batch)
                return nil
            case .schedule(let next):
                return next
            }
        }
    }
}

extension Debouncer where C == ContinuousClock {
    /// A debouncer timed on the continuous clock; see
    /// ``init(interval:maxWait:clock:onEmit:)``.
    public convenience init(
        interval: Duration = .milliseconds(250),
        maxWait: Duration? = nil,
        onEmit: @escaping @Sendable (SessionChange) -> Void
    ) {
        self.init(interval: interval, maxWait: maxWait, clock: ContinuousClock(), onEmit: onEmit)
    }
}
