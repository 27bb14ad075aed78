import Clocks
@testable import Debounce
import StateCastSupport
import Envelope
import Testing

private func value(_ n: Int) -> SessionChange {
    .config(["value": .int(Int64(n))])
}

@Suite("Debouncer on a test clock")
struct DebouncerTests {
    @Test func burstOfChangesEmitsOnceExactlyIntervalAfterTheLast() async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        let debouncer = Debouncer(clock: clock, onEmit: log.record)  // 250 ms by default

        for i in 0..<100 {
            if i > 0 { await clock.advance(by: .milliseconds(2)) }
            debouncer.submit(value(i))
        }
        #expect(clock.now == at(198))
        await waitForSleeper(clock)
        await clock.advance(by: .milliseconds(249))  // the timer wakes at 250 and sleeps again
        await waitForSleeper(clock)
        #expect(log.entries.isEmpty, "nothing emitted 249 ms after the last change")

        await clock.advance(by: .milliseconds(1))
        await log.wait(forCount: 1)
        #expect(log.entries == [.init(change: value(99), at: at(448))])
        #expect(!debouncer.hasTimer)
        #expect(await !hasSleeper(clock))
    }

    @Test func changesFurtherApartThanTheIntervalEmitSeparately() async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        let debouncer = Debouncer(interval: .milliseconds(250), clock: clock, onEmit: log.record)

        for i in 0..<3 {
            if i > 0 { await clock.advance(by: .milliseconds(50)) }  // 300 ms after the previous change
            debouncer.submit(value(i))
            await waitForSleeper(clock)
            await clock.advance(by: .milliseconds(250))
            await log.wait(forCount: i + 1)
        }
        #expect(log.entries == [
            .init(change: value(0), at: at(250)),
            .init(change: value(1), at: at(550)),
            .init(change: value(2), at: at(850)),
        ])
    }

    @Test func maxWaitBoundsTheDelayOfASteadyStream() async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        let debouncer = Debouncer(interval: .milliseconds(250), maxWait: .seconds(1), clock: clock, onEmit: log.record)

        // A change every 100 ms from 0 to 2.4 s; a batch is due at 1 s and 2 s.
        for i in 0..<25 {
            if i > 0 {
                await waitForSleeper(clock)
                await clock.advance(by: .milliseconds(100))
            }
            if i % 10 == 0 && i > 0 { await log.wait(forCount: i / 10) }
            debouncer.submit(value(i))
        }
        await waitForSleeper(clock)
        await clock.advance(by: .milliseconds(249))
        await waitForSleeper(clock)
        #expect(log.count == 2)
        await clock.advance(by: .milliseconds(1))
        await log.wait(forCount: 3)

        #expect(log.entries == [
            .init(change: value(9), at: at(1_000)),
            .init(change: value(19), at: at(2_000)),
            .init(change: value(24), at: at(2_650)),
        ])
    }

    @Test func mixedStructuralAndConfigChangesGiveOneFull() async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        let debouncer = Debouncer(clock: clock, onEmit: log.record)

        debouncer.submit(value(1))
        await clock.advance(by: .milliseconds(10))
        debouncer.submit(.full)
        await clock.advance(by: .milliseconds(10))
        debouncer.submit(.config(["mode": .string("wave")]))
        await waitForSleeper(clock)
        await clock.advance(by: .milliseconds(249))  // wakes at 250, sleeps again until 270
        await waitForSleeper(clock)
        await clock.advance(by: .milliseconds(1))
        await log.wait(forCount: 1)

        #expect(log.entries == [.init(change: .full, at: at(270))])
    }

    @Test func configChangesMergeLastValueWinning() async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        let debouncer = Debouncer(clock: clock, onEmit: log.record)

        debouncer.submit(.config(["speed": .double(1), "mode": .string("wave")]))
        debouncer.submit(.config(["speed": .double(2)]))
        debouncer.submit(.config(["size": .int(3), "speed": .double(3)]))
        await waitForSleeper(clock)
        await clock.advance(by: .milliseconds(250))
        await log.wait(forCount: 1)

        #expect(log.changes == [.config(["speed": .double(3), "mode": .string("wave"), "size": .int(3)])])
    }

    @Test func zeroIntervalEmitsSynchronouslyWithoutATimer() async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        let debouncer = Debouncer(interval: .zero, clock: clock, onEmit: log.record)

        for i in 0..<5 {
            debouncer.submit(value(i))
            #expect(log.count == i + 1, "emitted before submit returned")
            #expect(!debouncer.hasTimer)
        }
        debouncer.submit(.config([:]))
        #expect(log.count == 5, "an empty change emits nothing")
        #expect(log.changes == (0..<5).map(value))
        #expect(await !hasSleeper(clock))
    }

    @Test func flushEmitsNowAndTheTimerThenEmitsNothing() async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        let debouncer = Debouncer(clock: clock, onEmit: log.record)

        debouncer.submit(value(1))
        await clock.advance(by: .milliseconds(10))
        debouncer.submit(.config(["mode": .string("wave")]))
        debouncer.flush()
        #expect(log.entries == [.init(change: .config(["value": .int(1), "mode": .string("wave")]), at: at(10))])

        await waitForSleeper(clock)
        await clock.advance(by: .seconds(1))  // the old timer fires with nothing pending
        await waitUntil("the timer task ends") { !debouncer.hasTimer }
        debouncer.flush()  // waits for any emission under way; nothing is pending
        #expect(log.count == 1)

        // The next change starts a new batch with its own timer.
        debouncer.submit(value(2))
        await waitForSleeper(clock)
        await clock.advance(by: .milliseconds(250))
        await log.wait(forCount: 2)
        #expect(log.entries.last == .init(change: value(2), at: at(1_260)))
    }

    @Test func flushWithNothingPendingEmitsNothing() {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        let debouncer = Debouncer(clock: clock, onEmit: log.record)
        debouncer.flush()
        #expect(log.count == 0)
    }

    @Test func cancelDropsThePendingBatch() async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        let debouncer = Debouncer(clock: clock, onEmit: log.record)

        debouncer.submit(value(1))
        await waitForSleeper(clock)
        debouncer.cancel()
        #expect(!debouncer.hasTimer)
        await waitForNoSleeper(clock)  // the timer task was cancelled
        await clock.advance(by: .seconds(1))
        debouncer.flush()
        #expect(log.count == 0)

        debouncer.submit(value(2))
        await waitForSleeper(clock)
        await clock.advance(by: .milliseconds(250))
        await log.wait(forCount: 1)
        #expect(log.entries == [.init(change: value(2), at: at(1_250))])
    }

    @Test func droppingTheDebouncerCancelsItsTimer() async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        var debouncer: Debouncer<ManualClock>? = Debouncer(clock: clock, onEmit: log.record)
        weak let weakDebouncer = debouncer

        debouncer?.submit(value(1))
        await waitForSleeper(clock)
        debouncer = nil
        #expect(weakDebouncer == nil, "the timer task does not keep the debouncer alive")
        await waitForNoSleeper(clock)
        await clock.advance(by: .seconds(1))
        #expect(log.count == 0)
    }

    @Test func onEmitMaySubmitTheNextChange() async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock)
        let debouncer = Locked<Debouncer<ManualClock>?>(nil)
        let made = Debouncer(clock: clock) { change in
            log.record(change)
            if change == value(1) {
                debouncer.withLock { $0 }?.submit(value(2))
            }
        }
        debouncer.withLock { $0 = made }

        made.submit(value(1))
        await waitForSleeper(clock)
        await clock.advance(by: .milliseconds(250))
        await log.wait(forCount: 1)
        await waitForSleeper(clock)  // the change submitted from onEmit armed a new timer
        await clock.advance(by: .milliseconds(250))
        await log.wait(forCount: 2)
        #expect(log.entries == [.init(change: value(1), at: at(250)), .init(change: value(2), at: at(500))])
        debouncer.withLock { $0 = nil }
    }

    @Test func continuousClockConvenienceWithZeroInterval() {
        let log = Locked<[SessionChange]>([])
        let debouncer = Debouncer(interval: .zero) { change in log.withLock { $0.append(change) } }
        debouncer.submit(value(1))
        #expect(log.withLock { $0 } == [value(1)])
    }

    @Test(arguments: [Duration.zero, .milliseconds(250)])
    func concurrentSubmittersLoseNothingAndEmissionsStayOrdered(interval: Duration) async {
        let clock = ManualClock()
        let log = EmissionLog(clock: clock, yieldWhileRecording: true)
        let debouncer = Debouncer(interval: interval, clock: clock, onEmit: log.record)
        let threads = 8
        let changesPerThread = 1_000

        await runOnThreads(threads) { thread in
            for counter in 0..<changesPerThread {
                debouncer.submit(.config(["t\(thread)": .int(Int64(counter))]))
                // Half the threads also flush now and then, racing the others.
                if thread % 2 == 0 && counter % 100 == 99 { debouncer.flush() }
            }
        }
        debouncer.flush()

        let changes = log.changes
        #expect(log.overlaps == 0, "onEmit never runs twice at once")
        if interval == .zero { #expect(changes.count == threads * changesPerThread) }
        var union: JSONObject = [:]
        var orderViolations: [String] = []
        for change in changes {
            guard case .config(let values) = change, !values.isEmpty else {
                Issue.record("unexpected emission \(change)")
                continue
            }
            for (key, newValue) in values {
                // A thread's counter only grows, so emissions in order never go back.
                if let previous = union[key], case .int(let old) = previous, case .int(let new) = newValue, new <= old {
                    orderViolations.append("\(key): \(old) then \(new)")
                }
            }
            union.merge(values) { _, newer in newer }
        }
        #expect(orderViolations.isEmpty)
        let expected = JSONObject(uniqueKeysWithValues: (0..<threads).map { ("t\($0)", JSONValue.int(Int64(changesPerThread - 1))) })
        #expect(JSONValue.object(union) == JSONValue.object(expected))
    }
}
