import Envelope
import HostBroadcaster
import Logging
@testable import StateCastRelay
import Testing

/// `RedisPublisher.attach(to:…)`: the one call an embedding app makes to
/// publish its host to Redis (real redis-server, real host).
@Suite("Attaching a Redis publisher to a host, live", .serialized, .timeLimit(.minutes(1)))
struct RedisAttachLiveTests {
    let logger = Logger(label: "test")

    @Test("attach gives the host and the published history one seq and epoch, and every broadcast reaches Redis")
    func attachedPublisherFollowsTheHost() throws {
        let redis = try TestRedis()
        let channel = try RedisChannel("attach")
        let initial = Session(name: "attached", config: ["k": 0])
        var configuration = HostConfiguration()
        configuration.bindAddress = "127.0.0.1"
        configuration.port = 0
        let publisher = try RedisPublisher.attach(to: &configuration, url: redis.url, channel: channel, initial: initial, logger: logger)
        let seq = try #require(configuration.initialSeq)
        #expect(configuration.initialEpoch != nil && configuration.onBroadcast != nil)

        let host = HostBroadcaster(configuration: configuration, logger: logger)
        try host.start(initial: initial)
        publisher.start()
        defer { host.stop(); publisher.stop() }
        #expect(host.status.seq == seq && host.epoch == configuration.initialEpoch)
        for value in 1...3 { host.broadcast(.configUpdate(["k": .int(Int64(value))])) }
        #expect(eventually { publisher.publishedSeq == seq + 3 })

        let stored = try #require(try RedisSnapshotReader.read(try redis.client(), channel: channel))
        #expect(stored.seq == seq + 3 && stored.epoch == host.epoch)
        guard case .sessionUpdate(let session) = stored.state.payload else {
            Issue.record("the stored state is not a session_update")
            return
        }
        #expect(session.config["k"] == 3)
    }

    @Test("attach to an unreachable Redis throws naming the URL and leaves the configuration as it was")
    func unreachableRedisLeavesTheConfigurationAlone() throws {
        let url = try RedisURL(parsing: "redis://127.0.0.1:1")
        var configuration = HostConfiguration()
        #expect {
            _ = try RedisPublisher.attach(to: &configuration, url: url, channel: try RedisChannel("x"), initial: Session(name: "x"), logger: logger)
        } throws: { error in
            (error as? RedisError)?.description.contains("redis://127.0.0.1:1") == true
        }
        #expect(configuration.initialSeq == nil && configuration.initialEpoch == nil && configuration.onBroadcast == nil)
    }
}
