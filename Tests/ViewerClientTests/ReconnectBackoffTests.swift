import Testing
@testable import ViewerClient

@Suite("Reconnect schedule")
struct ReconnectBackoffTests {
    @Test("without jitter the schedule is exactly 2, 3, 4.5, 6.75, 10.125, 15, 15 s")
    func exactScheduleWithoutJitter() {
        var backoff = ReconnectBackoff(jitter: 0)
        var random = SeededRandom(seed: 1)
        let delays = (0..<8).map { _ in backoff.nextDelay(using: &random) }
        #expect(delays == [
            .seconds(2), .seconds(3), .milliseconds(4500), .milliseconds(6750),
            .milliseconds(10125), .seconds(15), .seconds(15), .seconds(15),
        ])
        #expect(backoff.failures == 8)
    }

    @Test("with jitter every delay stays inside base ±20 % and the draws spread over that range")
    func jitterStaysInsideItsBound() {
        var random = SeededRandom(seed: 42)
        var lowest = [Double](repeating: .infinity, count: 7)
        var highest = [Double](repeating: 0, count: 7)
        for _ in 0..<2000 {
            var backoff = ReconnectBackoff()
            for failure in 0..<7 {
                let delay = backoff.nextDelay(using: &random)
                let bounds = backoff.bounds(forFailure: failure)
                #expect(bounds.contains(delay), "failure \(failure): \(delay) outside \(bounds)")
                let ratio = delay.seconds / backoff.baseDelay(forFailure: failure).seconds
                lowest[failure] = min(lowest[failure], ratio)
                highest[failure] = max(highest[failure], ratio)
            }
        }
        for failure in 0..<7 {
            #expect(lowest[failure] >= 0.8 && lowest[failure] < 0.82)
            #expect(highest[failure] <= 1.2 && highest[failure] > 1.18)
        }
    }

    @Test("the jitter bound of each step is base × [0.8, 1.2]")
    func boundsFollowTheSchedule() {
        let backoff = ReconnectBackoff()
        #expect(backoff.bounds(forFailure: 0) == .milliseconds(1600) ... .milliseconds(2400))
        #expect(backoff.bounds(forFailure: 6) == .seconds(12) ... .seconds(18))
    }

    @Test("reset starts the schedule again at 2 s")
    func resetStartsOver() {
        var backoff = ReconnectBackoff(jitter: 0)
        var random = SeededRandom(seed: 7)
        _ = backoff.nextDelay(using: &random)
        _ = backoff.nextDelay(using: &random)
        #expect(backoff.nextDelay(using: &random) == .milliseconds(4500))
        backoff.reset()
        #expect(backoff.failures == 0)
        #expect(backoff.nextDelay(using: &random) == .seconds(2))
        #expect(backoff.nextDelay(using: &random) == .seconds(3))
    }

    @Test("jitter is clamped to 0…1 and the multiplier to at least 1")
    func parametersAreClamped() {
        #expect(ReconnectBackoff(jitter: -1).jitter == 0)
        #expect(ReconnectBackoff(jitter: 5).jitter == 1)
        #expect(ReconnectBackoff(multiplier: 0.5).multiplier == 1)
    }
}
