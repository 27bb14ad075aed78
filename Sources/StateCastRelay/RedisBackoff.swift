/// Delays between attempts to reach Redis: 100 ms, doubling, at most 2 s;
/// back to 100 ms after a success. Short, because a host or relay without
/// Redis is cut off from its fleet.
struct RedisBackoff: Sendable, Equatable {
    var initial: Duration = .milliseconds(100)
    var maximum: Duration = .seconds(2)
    private(set) var failures = 0

    /// The delay before the next attempt; counts one failure.
    mutating func nextDelay() -> Duration {
        var delay = initial
        for _ in 0..<min(failures, 16) where delay < maximum { delay *= 2 }
        failures += 1
        return min(delay, maximum)
    }

    mutating func reset() { failures = 0 }
}
