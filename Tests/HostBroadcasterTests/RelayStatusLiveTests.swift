import Envelope
import HostBroadcaster
import Logging
@testable import StateCastRelay
import Testing

/// What a relay's /status says about its upstream from the first moment it serves.
@Suite("A relay's /status from its first moment, live", .serialized, .timeLimit(.minutes(1)))
struct RelayStatusLiveTests {
    let logger = Logger(label: "test")

    @Test("the upstream seq and epoch are the state the relay started from, before its feed thread has read Redis again")
    func statusNamesTheUpstreamAtOnce() throws {
        let redis = try TestRedis()
        let channel = try RedisChannel("first-status")
        let initial = Session(name: "s", config: ["k": 0])
        var hostConfiguration = HostConfiguration()
        hostConfiguration.bindAddress = "127.0.0.1"
        hostConfiguration.port = 0
        let publisher = try RedisPublisher.attach(to: &hostConfiguration, url: redis.url, channel: channel, initial: initial, logger: logger)
        publisher.start()
        #expect(eventually { publisher.publishedSeq == hostConfiguration.initialSeq })
        publisher.stop()

        let feed = try RelayFeed(url: redis.url, channel: channel, logger: logger)
        let start = try feed.initialState()
        // Redis goes away before the feed's thread can subscribe: only what
        // the feed knew at start can be in /status.
        redis.kill()
        let relay = try startRelayHost(from: start, logger: logger)
        feed.start(serving: relay)
        defer { feed.stop(); relay.stop() }

        let extras = relay.status.extras
        #expect(extras["upstreamEpoch"] == .string(start.epoch))
        #expect(extras["upstreamSeq"] == .int(start.seq))
        #expect(relay.status.seq <= start.seq)
    }
}
