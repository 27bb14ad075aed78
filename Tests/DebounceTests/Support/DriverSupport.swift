import Clocks
@testable import Debounce
import StateCastSupport
import Foundation
import Synchronization
import Testing

typealias ManualClock = TestClock<Duration>

/// `ms` milliseconds after a fresh test clock's start.
func at(_ ms: Int64) -> ManualClock.Instant {
    ManualClock.Instant(offset: .milliseconds(ms))
}

/// Records what a ``Debouncer`` emits, when (on the test clock), and whether
/// two emissions ever overlapped.
final class EmissionLog: Sendable {
    struct Entry: Sendable, Equatable {
        var change: SessionChange
        var at: ManualClock.Instant
    }

    private let clock: ManualClock
    private let yieldWhileRecording: Bool
    /// `Locked`, not a bare `Mutex`: see its comment on ThreadSanitizer.
    private let recorded = Locked<[Entry]>([])
    private let inFlight = Atomic<Int>(0)
    private let overlapping = Atomic<Int>(0)

    /// With `yieldWhileRecording`, each `record` gives up its thread once
    /// midway, widening the window in which an overlapping or out-of-order
    /// emission would show.
    init(clock: ManualClock, yieldWhileRecording: Bool = false) {
        self.clock = clock
        self.yieldWhileRecording = yieldWhileRecording
    }

    /// The `onEmit` callback.
    func record(_ change: SessionChange) {
        if inFlight.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue != 1 {
            overlapping.wrappingAdd(1, ordering: .sequentiallyConsistent)
        }
        let now = clock.now
        if yieldWhileRecording { sched_yield() }
        recorded.withLock { $0.append(Entry(change: change, at: now)) }
        inFlight.wrappingSubtract(1, ordering: .sequentiallyConsistent)
    }

    var entries: [Entry] { recorded.withLock { $0 } }
    var changes: [SessionChange] { entries.map(\.change) }
    var count: Int { recorded.withLock { $0.count } }
    /// How many emissions started while another was still running.
    var overlaps: Int { overlapping.load(ordering: .sequentiallyConsistent) }

    /// Waits (bounded) until at least `count` emissions arrived.
    func wait(forCount count: Int, sourceLocation: SourceLocation = #_sourceLocation) async {
        await waitUntil("\(count) emission(s)", sourceLocation: sourceLocation) { self.count >= count }
    }
}

/// Polls `condition`, yielding in between, until it holds; records an issue
/// if it still does not after `timeout` of real time. The timeout only bounds
/// a broken test: passing tests never wait for real time to pass.
func waitUntil(
    _ what: String,
    timeout: Duration = .seconds(10),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async -> Bool
) async {
    let wall = ContinuousClock()
    let giveUp = wall.now.advanced(by: timeout)
    while !(await condition()) {
        if wall.now >= giveUp {
            Issue.record("Timed out waiting for \(what)", sourceLocation: sourceLocation)
            return
        }
        await Task.yield()
    }
}

/// Whether some task is sleeping on `clock`.
func hasSleeper(_ clock: ManualClock) async -> Bool {
    // checkSuspension throws exactly when a sleep is pending.
    (try? await clock.checkSuspension()) == nil
}

/// Waits until the debouncer's timer task sleeps on `clock`.
///
/// How to advance the test clock deterministically:
/// - only while the timer sleeps: a timer that registers its sleep after the
///   clock passed its deadline would fire late;
/// - to exactly the instant an emission is expected: the woken timer runs
///   asynchronously, so `onEmit` sees the clock's time when it runs, which
///   may already be the target of a longer advance;
/// - across at most one timer deadline, unless the woken timer sleeps again
///   past the target (it re-arms asynchronously, after `advance` moved on).
func waitForSleeper(_ clock: ManualClock, sourceLocation: SourceLocation = #_sourceLocation) async {
    await waitUntil("a timer sleeping on the test clock", sourceLocation: sourceLocation) {
        await hasSleeper(clock)
    }
}

/// Waits until nothing sleeps on `clock` any more.
func waitForNoSleeper(_ clock: ManualClock, sourceLocation: SourceLocation = #_sourceLocation) async {
    await waitUntil("no timer sleeping on the test clock", sourceLocation: sourceLocation) {
        await !hasSleeper(clock)
    }
}

/// Runs `body(index)` on `count` freshly started threads, released together,
/// and returns when all have finished.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
    final class Gate: Sendable {
        let arrived = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
    }
    let gate = Gate()
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        for index in 0..<count {
            let thread = Thread {
                gate.arrived.wrappingAdd(1, ordering: .sequentiallyConsistent)
                while gate.arrived.load(ordering: .sequentiallyConsistent) < count {
                    sched_yield()
                }
                body(index)
                if gate.finished.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue == count {
                    continuation.resume()
                }
            }
            thread.start()
        }
    }
}
