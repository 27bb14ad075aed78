/// The viewer's reconnect schedule (SPEC §4): 2 s, then ×1.5 after each
/// failure, capped at 15 s — 2, 3, 4.5, 6.75, 10.125, 15, 15 … — with
/// jitter by default, and back to 2 s after a successful connection.
///
/// Jitter is symmetric: with `jitter = 0.2` every delay is drawn uniformly
/// from `base × [0.8, 1.2]`, where `base` is the capped schedule value (so a
/// capped delay lies between 12 s and 18 s). Symmetric jitter keeps the mean
/// on the schedule while spreading a crowd of viewers that lost the same
/// host. The random source is injectable for tests.
///
/// ```swift
/// var backoff = ReconnectBackoff(jitter: 0)
/// var rng = SystemRandomNumberGenerator()
/// backoff.nextDelay(using: &rng)   // 2 s
/// backoff.nextDelay(using: &rng)   // 3 s
/// backoff.reset()                  // after a successful connection
/// ```
public struct ReconnectBackoff: Sendable, Hashable {
    /// The first delay after a connection is lost. Default 2 s.
    public var initialDelay: Duration
    /// The factor applied after each further failure. Default 1.5.
    public var multiplier: Double
    /// The largest delay before jitter. Default 15 s.
    public var maximumDelay: Duration
    /// The jitter as a fraction of the delay, 0 to 1: each delay is scaled by
    /// a uniform factor in `1 - jitter ... 1 + jitter`. Default 0.2; 0 turns it off.
    public var jitter: Double
    /// How many delays have been handed out since the last reset.
    public private(set) var failures: Int = 0

    /// A schedule with the given parameters (defaults are SPEC §4's).
    public init(
        initialDelay: Duration = .seconds(2),
        multiplier: Double = 1.5,
        maximumDelay: Duration = .seconds(15),
        jitter: Double = 0.2
    ) {
        self.initialDelay = initialDelay
        self.multiplier = max(1, multiplier)
        self.maximumDelay = maximumDelay
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The delay before the `failure`-th reconnect attempt (0-based), before jitter.
    public func baseDelay(forFailure failure: Int) -> Duration {
        let initial = initialDelay.seconds
        let maximum = maximumDelay.seconds
        var delay = initial
        var step = 0
        while step < failure, delay < maximum {
            delay *= multiplier
            step += 1
        }
        return .fromSeconds(min(delay, maximum))
    }

    /// The range a jittered delay for the `failure`-th attempt lies in.
    public func bounds(forFailure failure: Int) -> ClosedRange<Duration> {
        let base = baseDelay(forFailure: failure).seconds
        return .fromSeconds(base * (1 - jitter)) ... .fromSeconds(base * (1 + jitter))
    }

    /// Hands out the next delay (jittered with `random`) and counts one failure.
    public mutating func nextDelay(using random: inout some RandomNumberGenerator) -> Duration {
        let base = baseDelay(forFailure: failures).seconds
        failures += 1
        guard jitter > 0 else { return .fromSeconds(base) }
        let factor = 1 + Double.random(in: -jitter...jitter, using: &random)
        return .fromSeconds(base * factor)
    }

    /// Starts the schedule again at ``initialDelay`` (after a successful connection).
    public mutating func reset() {
        failures = 0
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }

    /// A duration from seconds, rounded to the microsecond (exact for 2, 3, 4.5, 6.75, 10.125 …).
    static func fromSeconds(_ seconds: Double) -> Duration {
        .microseconds(Int64((max(seconds, 0) * 1_000_000).rounded()))
    }
}
