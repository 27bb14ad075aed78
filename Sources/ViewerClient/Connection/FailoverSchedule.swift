/// Which of several equivalent host URLs a viewer uses (a host and its
/// relays, docs/SCALING.md), without I/O.
///
/// Policy: stay on a URL while it works. When a connection is lost or an
/// attempt fails, move to the next URL (round-robin) after a short failover
/// delay; only when every URL has failed in a row since the last successful
/// connection — a whole round — wait on the ``ReconnectBackoff`` schedule.
/// With one URL every failure is a whole round, which is exactly the
/// single-host behaviour.
///
/// ```swift
/// var failover = FailoverSchedule(count: 2)
/// failover.failed()      // false: move to URL 1 at once
/// failover.failed()      // true: both failed, back to URL 0 after the backoff delay
/// failover.succeeded()   // a connection was established: start counting again
/// ```
public struct FailoverSchedule: Sendable, Hashable {
    /// How many URLs there are (at least 1).
    public let count: Int
    /// The index of the URL to use for the next attempt.
    public private(set) var current: Int
    /// Failures since the last established connection.
    public private(set) var failuresSinceSuccess = 0

    /// A schedule over `count` URLs, starting at `start`.
    public init(count: Int, start: Int = 0) {
        self.count = max(1, count)
        current = min(max(0, start), self.count - 1)
    }

    /// A connection was established on ``current``.
    public mutating func succeeded() {
        failuresSinceSuccess = 0
    }

    /// The connection on ``current`` was lost or could not be made: moves to
    /// the next URL. Returns `true` when every URL has failed since the last
    /// success (wait on the backoff), `false` to try the next one after the
    /// short failover delay.
    @discardableResult
    public mutating func failed() -> Bool {
        failuresSinceSuccess += 1
        current = (current + 1) % count
        return failuresSinceSuccess % count == 0
    }
}
