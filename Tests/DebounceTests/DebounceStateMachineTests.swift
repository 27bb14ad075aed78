import Debounce
import Envelope
import Testing

private typealias Machine = DebounceStateMachine<TestInstant>

private func value(_ n: Int) -> SessionChange {
    .config(["value": .int(Int64(n))])
}

@Suite("DebounceStateMachine actions")
struct DebounceStateMachineActionTests {
    @Test func firstChangeSchedulesTheTimerAtLastChangePlusInterval() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        #expect(machine.pending == nil)
        #expect(machine.deadline == nil)

        #expect(machine.submit(value(1), at: .ms(10)) == .schedule(at: .ms(260)))
        #expect(machine.pending == value(1))
        #expect(machine.deadline == .ms(260))
        #expect(machine.armedTimer == .ms(260))
    }

    @Test func laterChangesMoveTheDeadlineButLeaveTheArmedTimer() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(0))
        #expect(machine.submit(value(2), at: .ms(100)) == .none)
        #expect(machine.deadline == .ms(350))
        #expect(machine.armedTimer == .ms(250))
        #expect(machine.pending == value(2))
    }

    @Test func earlyTimerReschedulesToTheRealDeadline() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(0))
        _ = machine.submit(value(2), at: .ms(100))
        #expect(machine.timerFired(at: .ms(250)) == .schedule(at: .ms(350)))
        #expect(machine.armedTimer == .ms(350))
        #expect(machine.pending == value(2))
    }

    @Test func timerAtTheDeadlineEmitsAndClears() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(0))
        _ = machine.submit(value(2), at: .ms(100))
        #expect(machine.timerFired(at: .ms(350)) == .emit(value(2)))
        #expect(machine.pending == nil)
        #expect(machine.deadline == nil)
        #expect(machine.armedTimer == nil)
    }

    @Test func lateTimerStillEmits() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(0))
        #expect(machine.timerFired(at: .ms(5_000)) == .emit(value(1)))
    }

    @Test func nextBatchAfterAnEmissionArmsAFreshTimer() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(0))
        _ = machine.timerFired(at: .ms(250))
        #expect(machine.submit(value(2), at: .ms(300)) == .schedule(at: .ms(550)))
    }

    @Test func maxWaitCapsTheDeadlineFromTheFirstChange() {
        var machine = Machine(interval: .milliseconds(250), maxWait: .seconds(1))
        #expect(machine.submit(value(0), at: .ms(0)) == .schedule(at: .ms(250)))
        _ = machine.submit(value(1), at: .ms(200))
        #expect(machine.timerFired(at: .ms(250)) == .schedule(at: .ms(450)))
        _ = machine.submit(value(2), at: .ms(900))
        #expect(machine.deadline == .ms(1_000))
        #expect(machine.timerFired(at: .ms(450)) == .schedule(at: .ms(1_000)))
        #expect(machine.timerFired(at: .ms(1_000)) == .emit(value(2)))
    }

    @Test func maxWaitShorterThanIntervalBoundsTheFirstDeadline() {
        var machine = Machine(interval: .milliseconds(250), maxWait: .milliseconds(100))
        #expect(machine.submit(value(0), at: .ms(0)) == .schedule(at: .ms(100)))
    }

    @Test func zeroIntervalEmitsEveryChangeAtOnce() {
        var machine = Machine(interval: .zero, maxWait: nil)
        #expect(machine.emitsImmediately)
        #expect(machine.submit(value(1), at: .ms(0)) == .emit(value(1)))
        #expect(machine.submit(.full, at: .ms(0)) == .emit(.full))
        #expect(machine.pending == nil)
        #expect(machine.armedTimer == nil)
    }

    @Test func zeroOrNegativeDurationsDisableDebouncing() {
        #expect(Machine(interval: .milliseconds(-5), maxWait: nil).emitsImmediately)
        #expect(Machine(interval: .milliseconds(250), maxWait: .zero).emitsImmediately)
        #expect(!Machine(interval: .milliseconds(250), maxWait: nil).emitsImmediately)
        #expect(!Machine(interval: .milliseconds(250), maxWait: .milliseconds(1)).emitsImmediately)
        var machine = Machine(interval: .milliseconds(250), maxWait: .zero)
        #expect(machine.submit(value(1), at: .ms(7)) == .emit(value(1)))
    }

    @Test func emptyChangesAreIgnored() {
        var debouncing = Machine(interval: .milliseconds(250), maxWait: nil)
        #expect(debouncing.submit(.config([:]), at: .ms(0)) == .none)
        #expect(debouncing.pending == nil)
        #expect(debouncing.armedTimer == nil)
        var immediate = Machine(interval: .zero, maxWait: nil)
        #expect(immediate.submit(.config([:]), at: .ms(0)) == .none)
    }

    @Test func flushTakesThePendingBatchAndLeavesTheTimerArmed() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(0))
        _ = machine.submit(.config(["other": .bool(true)]), at: .ms(5))
        #expect(machine.flush() == .config(["value": .int(1), "other": .bool(true)]))
        #expect(machine.pending == nil)
        #expect(machine.flush() == nil)
        #expect(machine.armedTimer == .ms(250))
        #expect(machine.timerFired(at: .ms(250)) == .none)
        #expect(machine.armedTimer == nil)
    }

    @Test func newBatchAfterFlushReusesTheArmedTimerWhenItFiresFirst() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(0))
        _ = machine.flush()
        #expect(machine.submit(value(2), at: .ms(100)) == .none)
        #expect(machine.timerFired(at: .ms(250)) == .schedule(at: .ms(350)))
        #expect(machine.timerFired(at: .ms(350)) == .emit(value(2)))
    }

    @Test func batchDueBeforeTheArmedTimerRearmsIt() {
        // With a monotonic clock a new batch is never due before the armed
        // timer; an instant read out of order by a concurrent caller can be.
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(100))  // armed at 350
        _ = machine.flush()
        #expect(machine.submit(value(2), at: .ms(0)) == .schedule(at: .ms(250)))
        #expect(machine.armedTimer == .ms(250))
    }

    @Test func cancelDropsThePendingBatchAndDisarms() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(0))
        machine.cancel()
        #expect(machine.pending == nil)
        #expect(machine.deadline == nil)
        #expect(machine.armedTimer == nil)
        #expect(machine.flush() == nil)
        #expect(machine.timerFired(at: .ms(250)) == .none)
        // A change after cancel starts a fresh batch with a fresh timer.
        #expect(machine.submit(value(2), at: .ms(300)) == .schedule(at: .ms(550)))
    }

    @Test func mixedStructuralAndConfigChangesBecomeOneFull() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(0))
        _ = machine.submit(.full, at: .ms(10))
        _ = machine.submit(value(2), at: .ms(20))
        #expect(machine.pending == .full)
        #expect(machine.timerFired(at: .ms(250)) == .schedule(at: .ms(270)))
        #expect(machine.timerFired(at: .ms(270)) == .emit(.full))
    }

    @Test func outOfOrderInstantsKeepTheLatestChange() {
        var machine = Machine(interval: .milliseconds(250), maxWait: nil)
        _ = machine.submit(value(1), at: .ms(100))
        _ = machine.submit(value(2), at: .ms(90))  // read the clock before the other caller
        #expect(machine.deadline == .ms(350))
    }
}

@Suite("DebounceStateMachine timelines")
struct DebounceStateMachineTimelineTests {
    @Test func burstEmitsOnceExactlyIntervalAfterTheLastChange() {
        var sim = Simulation(interval: .milliseconds(250))
        for i in 0..<100 {
            if i > 0 { sim.advance(by: .milliseconds(2)) }
            sim.submit(.config(["value": .int(Int64(i)), "k\(i % 3)": .int(Int64(i))]))
        }
        #expect(sim.now == .ms(198))
        sim.advance(to: .ms(447))
        #expect(sim.emissions.isEmpty)
        sim.advance(to: .ms(448))
        #expect(sim.emissions == [
            .init(change: .config(["value": .int(99), "k0": .int(99), "k1": .int(97), "k2": .int(98)]), at: .ms(448))
        ])
        #expect(sim.armings == 1)
        #expect(sim.timerFirings == 2)  // once early at 250, once at 448
        #expect(sim.timer == nil)
    }

    @Test func changesFurtherApartThanTheIntervalEmitSeparately() {
        var sim = Simulation(interval: .milliseconds(250))
        for i in 0..<3 {
            if i > 0 { sim.advance(by: .milliseconds(300)) }
            sim.submit(value(i))
        }
        sim.advance(by: .seconds(1))
        #expect(sim.emissions == [
            .init(change: value(0), at: .ms(250)),
            .init(change: value(1), at: .ms(550)),
            .init(change: value(2), at: .ms(850)),
        ])
    }

    @Test func maxWaitBoundsTheDelayOfASteadyStream() {
        var sim = Simulation(interval: .milliseconds(250), maxWait: .seconds(1))
        for i in 0..<35 {  // a change every 100 ms, 0 ... 3.4 s
            if i > 0 { sim.advance(by: .milliseconds(100)) }
            sim.submit(value(i))
        }
        sim.advance(by: .seconds(1))
        // Each batch waits at most 1 s from its first change; the last one
        // ends 250 ms after the stream stops.
        #expect(sim.emissions == [
            .init(change: value(9), at: .ms(1_000)),
            .init(change: value(19), at: .ms(2_000)),
            .init(change: value(29), at: .ms(3_000)),
            .init(change: value(34), at: .ms(3_650)),
        ])
    }

    @Test func withoutMaxWaitASteadyStreamWaitsForQuiet() {
        var sim = Simulation(interval: .milliseconds(250))
        for i in 0..<35 {
            if i > 0 { sim.advance(by: .milliseconds(100)) }
            sim.submit(value(i))
        }
        sim.advance(by: .seconds(1))
        #expect(sim.emissions == [.init(change: value(34), at: .ms(3_650))])
    }

    @Test func flushEmitsNowAndTheTimerThenEmitsNothing() {
        var sim = Simulation(interval: .milliseconds(250))
        sim.submit(value(1))
        sim.advance(by: .milliseconds(10))
        sim.flush()
        sim.advance(by: .seconds(1))
        #expect(sim.emissions == [.init(change: value(1), at: .ms(10))])
        #expect(sim.timerFirings == 1)
    }

    @Test(arguments: [0, 1, 30, 249, 250, 251, 1_000])
    func zeroIntervalNeverArmsATimer(gapMilliseconds: Int64) {
        var sim = Simulation(interval: .zero, maxWait: .seconds(1))
        for i in 0..<10 {
            sim.advance(by: .milliseconds(gapMilliseconds))
            sim.submit(value(i))
            #expect(sim.emissions.count == i + 1)
        }
        #expect(sim.armings == 0)
        #expect(sim.timerFirings == 0)
        #expect(sim.emissions.map(\.change) == (0..<10).map(value))
    }
}
