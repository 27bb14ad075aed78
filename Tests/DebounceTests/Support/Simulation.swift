import Debounce

/// A minimal driver for ``DebounceStateMachine`` on virtual time: one timer,
/// fired in order as time advances, every emission recorded with its instant.
struct Simulation {
    typealias Machine = DebounceStateMachine<TestInstant>

    struct Emission: Equatable, CustomStringConvertible {
        var change: SessionChange
        var at: TestInstant
        var description: String { "\(change) at \(at)" }
    }

    private(set) var machine: Machine
    private(set) var now = TestInstant.ms(0)
    private(set) var timer: TestInstant?
    private(set) var emissions: [Emission] = []
    /// How often the timer fired (emitting or rescheduling).
    private(set) var timerFirings = 0
    /// How often the machine asked to (re)arm the timer from `submit`.
    private(set) var armings = 0

    init(interval: Duration, maxWait: Duration? = nil) {
        machine = Machine(interval: interval, maxWait: maxWait)
    }

    mutating func submit(_ change: SessionChange) {
        let action = machine.submit(change, at: now)
        if case .schedule = action { armings += 1 }
        perform(action)
    }

    /// Moves time forward to `instant`, firing the timer at its deadlines.
    mutating func advance(to instant: TestInstant) {
        precondition(instant >= now)
        while let deadline = timer, deadline <= instant {
            now = deadline
            timer = nil
            timerFirings += 1
            perform(machine.timerFired(at: now))
        }
        now = instant
    }

    mutating func advance(by duration: Duration) {
        advance(to: now.advanced(by: duration))
    }

    mutating func flush() {
        if let batch = machine.flush() { emissions.append(Emission(change: batch, at: now)) }
    }

    private mutating func perform(_ action: Machine.Action) {
        switch action {
        case .none: break
        case .schedule(let deadline): timer = deadline
        case .emit(let batch): emissions.append(Emission(change: batch, at: now))
        }
    }
}
