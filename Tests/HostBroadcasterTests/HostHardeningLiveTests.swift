import Envelope
import Foundation
@testable import HostBroadcaster
import Logging
import Testing

/// Issue 13, items 1, 2 and 7 at the library level: listen addresses,
/// configuration ranges, and seqs and sizes read from Redis (real sockets,
/// a real redis-server).
@Suite("host hardening, live", .serialized, .timeLimit(.minutes(1)))
struct HostHardeningLiveTests {
    let logger = Logger(label: "test")

    private func configuration(bind: String?) -> HostConfiguration {
        var configuration = HostConfiguration()
        configuration.bindAddress = bind
        configuration.port = 0
        return configuration
    }

    @Test func aHostNameIsResolvedAndListenedOn() throws {
        let host = HostBroadcaster(configuration: configuration(bind: "localhost"), logger: logger)
        try host.start(initial: Session(name: "named"))
        defer { host.stop() }
        let viewer = try RawWebSocket(port: host.status.port)
        #expect(try Envelope(decoding: Array(try viewer.readText().utf8)).seq != nil)
    }

    @Test(arguments: ["192.0.2.1", "no-such-host.invalid"])
    func anAddressThatCannotBeBoundFailsAtStart(address: String) {
        let host = HostBroadcaster(configuration: configuration(bind: address), logger: logger)
        #expect(throws: HostError.self) { try host.start(initial: Session(name: "nowhere")) }
        #expect(host.status.running == false)
    }

    @Test func valuesThatWouldOverflowAreRefused() {
        var tooLong = configuration(bind: "127.0.0.1")
        tooLong.pingInterval = .seconds(Int64.max / 2)
        tooLong.pingTimeout = .seconds(Int64.max)
        var hugeBacklog = configuration(bind: "127.0.0.1")
        hugeBacklog.maxViewerBacklogBytes = Int.max
        var hugeSeq = configuration(bind: "127.0.0.1")
        hugeSeq.initialSeq = Int64.max
        var keepalive = configuration(bind: "127.0.0.1")
        keepalive.sseKeepaliveInterval = .seconds(1e12)
        for bad in [tooLong, hugeBacklog, hugeSeq, keepalive] {
            let host = HostBroadcaster(configuration: bad, logger: logger)
            #expect(throws: HostError.self) { try host.start(initial: Session(name: "bad")) }
        }
    }

    @Test func aRelayRefusesSeqsAJavaScriptViewerCouldNotRead() throws {
        var relayConfiguration = configuration(bind: "127.0.0.1")
        relayConfiguration.initialSeq = 100
        let relay = HostBroadcaster(configuration: relayConfiguration, logger: logger)
        try relay.start(initial: Session(name: "relayed"))
        defer { relay.stop() }
        let viewer = try RawWebSocket(port: relay.status.port)
        _ = try viewer.readText()
        #expect(relay.relay(Envelope(.sessionUpdate(Session(name: "evil")), seq: Int64.max, epoch: "other")) == .rejected)
        #expect(relay.relay(Envelope(.configUpdate(["k": 1]), seq: -1)) == .rejected)
        #expect(relay.relay(Envelope(.configUpdate(["k": 2]), seq: 101)) == .applied)
        #expect(try Envelope(decoding: Array(try viewer.readText().utf8)).seq == 101)
    }

    @Test func aStateWithASeqNearInt64MaxIsNotAStateCastState() throws {
        let redis = try TestRedis()
        let channel = try RedisChannel("evil")
        let hostile = Envelope(.sessionUpdate(Session(name: "evil")), seq: Int64.max, epoch: "e").encoded()
        try redis.client().command([Array("SET".utf8), Array(channel.stateKey.utf8), hostile])
        #expect(throws: RedisError.self) { _ = try RedisSnapshotReader.read(try redis.client(), channel: channel) }
    }

    @Test func hostileBaseAndHistoryOnlyCostThePreload() throws {
        let redis = try TestRedis()
        let channel = try RedisChannel("evil2")
        let client = try redis.client()
        try client.command([Array("SET".utf8), Array(channel.stateKey.utf8),
                            Envelope(.sessionUpdate(Session(name: "ok")), seq: 10, epoch: "e").encoded()])
        try client.command([Array("SET".utf8), Array(channel.baseKey.utf8),
                            Envelope(.sessionUpdate(Session(name: "evil")), seq: Int64.max - 1, epoch: "e").encoded()])
        // A list far longer than any publisher writes: only the newest entries are read.
        let entry = Envelope(.configUpdate(["k": 1]), seq: 10).encoded()
        for _ in 0..<3 {
            try client.command([Array("RPUSH".utf8), Array(channel.historyKey.utf8)] + Array(repeating: entry, count: 5000))
        }
        let snapshot = try #require(try RedisSnapshotReader.read(client, channel: channel))
        #expect(snapshot.seq == 10 && snapshot.base == nil)
        #expect(snapshot.history.count == RedisSnapshotReader.maxHistoryEntries)
    }

    @Test func aReplyOverTheBoundFailsTheConnectionInsteadOfBeingBuffered() throws {
        let redis = try TestRedis()
        let channel = try RedisChannel("big")
        let session = Session(name: "big", data: .string(String(repeating: "x", count: 2 << 20)))
        try redis.client().command([Array("SET".utf8), Array(channel.stateKey.utf8),
                                    Envelope(.sessionUpdate(session), seq: 10, epoch: "e").encoded()])
        let bounded = try RedisConnection(url: redis.url, timeout: .seconds(2), maxReplyBytes: 1 << 20)
        #expect(throws: RedisError.self) { _ = try RedisSnapshotReader.read(bounded, channel: channel) }
        #expect(!bounded.isOpen)
        #expect(try RedisSnapshotReader.read(try redis.client(), channel: channel)?.seq == 10)
    }
}
