import Envelope
import Foundation
@testable import HostBroadcaster
import Logging
import Testing
import ViewerClient

#if canImport(Glibc)
import Glibc
#endif

/// A redis-server of the test's own, on a free loopback port, without persistence.
final class TestRedis {
    let port: Int
    private var process: Process?

    init() throws {
        port = try Self.freePort()
        try start()
    }

    var url: RedisURL { try! RedisURL(parsing: "redis://127.0.0.1:\(port)") }

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        for _ in 0..<200 {
            if (try? RedisConnection(url: url, timeout: .milliseconds(200)).command("PING")) != nil { return }
            usleep(20_000)
        }
        throw TestRedisError(message: "redis-server did not answer on port \(port) within 4 s (is it installed? scripts/setup installs it)")
    }

    /// Kills the server (SIGKILL: it loses everything, as the tests want).
    func kill() {
        guard let process else { return }
        process.terminate()
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers.
    func freeze() {
        guard let process else { return }
        Glibc.kill(process.processIdentifier, SIGSTOP)
    }

    /// Lets a frozen server run again (SIGCONT).
    func resume() {
        guard let process else { return }
        Glibc.kill(process.processIdentifier, SIGCONT)
    }

    deinit { kill() }

    func client() throws -> RedisConnection { try RedisConnection(url: url, timeout: .seconds(2)) }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestRedisError(message: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct TestRedisError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Polls `condition` every 10 ms for at most `seconds`.
func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// A publishing host and a relay in one process, over a real redis-server and real sockets.
@Suite("Redis publisher and relay feed, live", .serialized, .timeLimit(.minutes(1)))
struct RedisLiveTests {
    let logger = Logger(label: "test")

    func startPublishingHost(_ redis: TestRedis, channel: RedisChannel) throws -> (HostBroadcaster, RedisPublisher) {
        let initial = Session(name: "live", config: ["k": 0])
        let publisher = try RedisPublisher(url: redis.url, channel: channel, initial: initial, seq: 1000, epoch: "epoch-a", logger: logger)
        var configuration = HostConfiguration()
        configuration.bindAddress = "127.0.0.1"
        configuration.port = 0
        configuration.initialSeq = 1000
        configuration.initialEpoch = "epoch-a"
        configuration.onBroadcast = { envelope, state in publisher.record(envelope, state: state) }
        let host = HostBroadcaster(configuration: configuration, logger: logger)
        try host.start(initial: initial)
        publisher.start()
        return (host, publisher)
    }

    func startRelay(_ redis: TestRedis, channel: RedisChannel) throws -> (HostBroadcaster, RelayFeed) {
        let feed = try RelayFeed(url: redis.url, channel: channel, logger: logger)
        let start = try feed.initialState()
        var configuration = HostConfiguration()
        configuration.bindAddress = "127.0.0.1"
        configuration.port = 0
        configuration.initialSeq = start.seq
        configuration.initialEpoch = start.epoch
        let relay = HostBroadcaster(configuration: configuration, logger: logger)
        try relay.start(initial: start.session)
        feed.start(serving: relay)
        return (relay, feed)
    }

    @Test("the publisher keeps state, base and history in Redis; a relay started later preloads the history, so a viewer resumes there with one config_update")
    func relayPreloadsHistoryForResume() throws {
        let redis = try TestRedis()
        let channel = try RedisChannel("live1")
        let (host, publisher) = try startPublishingHost(redis, channel: channel)
        defer { host.stop(); publisher.stop() }
        for value in 1...20 { host.broadcast(.configUpdate(["k": .int(Int64(value))])) }
        #expect(eventually { publisher.publishedSeq == 1020 })

        let client = try redis.client()
        let stored = try #require(try RedisSnapshotReader.read(client, channel: channel))
        #expect(stored.seq == 1020 && stored.epoch == "epoch-a")
        #expect(stored.chain != nil)
        #expect(stored.history.count == 20)

        let (relay, feed) = try startRelay(redis, channel: channel)
        defer { feed.stop(); relay.stop() }
        #expect(eventually { relay.status.seq == 1020 })
        #expect(relay.session?.config["k"] == 20)
        #expect(relay.epoch == "epoch-a")

        // A viewer that was at 1015 on another relay resumes here with the changes since, not the full state.
        let viewer = try RawWebSocket(port: relay.status.port, path: "/?since=1015&epoch=epoch-a")
        let first = try Envelope(decoding: Array(try viewer.readText().utf8))
        #expect(first == Envelope(.configUpdate(["k": 20]), seq: 1020, epoch: "epoch-a"))

        host.broadcast(.configUpdate(["k": 21]))
        let next = try Envelope(decoding: Array(try viewer.readText().utf8))
        #expect(next == Envelope(.configUpdate(["k": 21]), seq: 1021, epoch: "epoch-a"))
    }

    @Test("Redis lost and back empty: the host republishes, the relay reports degraded, then converges without going back")
    func survivesARedisRestart() throws {
        let redis = try TestRedis()
        let channel = try RedisChannel("live2")
        let (host, publisher) = try startPublishingHost(redis, channel: channel)
        defer { host.stop(); publisher.stop() }
        let (relay, feed) = try startRelay(redis, channel: channel)
        defer { feed.stop(); relay.stop() }
        let viewer = try RawWebSocket(port: relay.status.port, timeoutSeconds: 10)
        #expect(try Envelope(decoding: Array(try viewer.readText().utf8)).seq == 1000)
        host.broadcast(.configUpdate(["k": 1]))
        #expect(eventually { relay.status.seq == 1001 })

        redis.kill()
        #expect(eventually(4) { feed.isDegraded })
        for value in 2...5 { host.broadcast(.configUpdate(["k": .int(Int64(value))])) }
        #expect(relay.status.seq == 1001)   // still serving its last state
        try redis.start()
        #expect(eventually(8) { relay.status.seq == 1005 && !feed.isDegraded })
        #expect(relay.session?.config["k"] == 5)
        #expect(publisher.isConnected)

        // The viewer saw only increasing seqs, and the missed changes as config_updates (the history allowed it).
        var seqs: [Int64] = []
        while seqs.last != 1005 {
            let envelope = try Envelope(decoding: Array(try viewer.readText().utf8))
            seqs.append(envelope.seq ?? -1)
        }
        #expect(seqs == [1001, 1002, 1003, 1004, 1005])
        // /status's relay members are published just after the flags they mirror: wait for them.
        #expect(eventually {
            guard let response = try? RawWebSocket.httpGet(port: relay.status.port, path: "/status"),
                  let status = try? JSONValue(parsing: response.1) else { return false }
            return status["role"] == "relay" && status["degraded"] == false && status["upstreamSeq"] == 1005
        })
    }

    @Test("Redis frozen (SIGSTOP): the relay reports degraded, the host serves its own viewers, then everyone converges without going back")
    func survivesARedisFreeze() throws {
        let redis = try TestRedis()
        let channel = try RedisChannel("live4")
        let (host, publisher) = try startPublishingHost(redis, channel: channel)
        defer { host.stop(); publisher.stop() }
        let (relay, feed) = try startRelay(redis, channel: channel)
        defer { feed.stop(); relay.stop() }
        let relayViewer = try RawWebSocket(port: relay.status.port, timeoutSeconds: 20)
        let hostViewer = try RawWebSocket(port: host.status.port, timeoutSeconds: 20)
        var relayState = ViewerState()
        var hostState = ViewerState()
        _ = relayState.apply(.text(Array(try relayViewer.readText().utf8)))
        _ = hostState.apply(.text(Array(try hostViewer.readText().utf8)))
        host.broadcast(.configUpdate(["k": 1]))
        #expect(eventually { relay.status.seq == 1001 })

        redis.freeze()
        defer { redis.resume() }
        // However long a loaded machine takes to notice, but noticed while frozen.
        #expect(eventually(20) { feed.isDegraded })
        for value in 2...5 { host.broadcast(.configUpdate(["k": .int(Int64(value))])) }
        // The host's own viewer gets every change while Redis is frozen.
        while hostState.lastSeq != 1005 { _ = hostState.apply(.text(Array(try hostViewer.readText().utf8))) }
        #expect(hostState.session == host.session)
        #expect(relay.status.seq <= 1001, "the relay moved on with Redis frozen")

        redis.resume()
        #expect(eventually(20) { relay.status.seq == 1005 && !feed.isDegraded })
        #expect(publisher.isConnected)
        var seqs: [Int64] = []
        while relayState.lastSeq != 1005 {
            let text = try relayViewer.readText()
            seqs.append(try Envelope(decoding: Array(text.utf8)).seq ?? -1)
            _ = relayState.apply(.text(Array(text.utf8)))
        }
        #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count, "the relay's viewer went back: \(seqs)")
        #expect(relayState.session == host.session)
    }

    @Test("a new host run (another epoch) on the channel resets the relay's viewers to the new state")
    func newEpochResetsTheRelay() throws {
        let redis = try TestRedis()
        let channel = try RedisChannel("live3")
        let (host, publisher) = try startPublishingHost(redis, channel: channel)
        let (relay, feed) = try startRelay(redis, channel: channel)
        defer { feed.stop(); relay.stop() }
        host.broadcast(.configUpdate(["k": 1]))
        #expect(eventually { relay.status.seq == 1001 })
        host.stop()
        publisher.stop()

        let next = Session(name: "second run", config: ["k": 7])
        let second = try RedisPublisher(url: redis.url, channel: channel, initial: next, seq: 5, epoch: "epoch-b", logger: logger)
        second.start()
        defer { second.stop() }
        #expect(eventually { relay.epoch == "epoch-b" })
        #expect(relay.status.seq == 5 && relay.session == next)
    }

    @Test("a late write (left in a socket that timed out) never steps Redis back")
    func lateWritesAreNoOps() throws {
        let redis = try TestRedis()
        let channel = try RedisChannel("late")
        let client = try redis.client()
        var log = PublishedHistory(initial: Session(name: "s", config: ["k": 0]), seq: 10, epoch: "e", maxCount: 64, maxBytes: 1 << 20)
        #expect(try client.command(RedisWrites.fullRewrite(log, channel: channel)) == .integer(1))
        log.record(Envelope(.configUpdate(["k": 1]), seq: 11), state: Session(name: "s", config: ["k": 1]))
        let lateAppend = try #require(RedisWrites.incremental(log, channel: channel, syncedSeq: 10, syncedBaseSeq: 10))
        let lateFull = RedisWrites.fullRewrite(log, channel: channel)
        log.record(Envelope(.configUpdate(["k": 2]), seq: 12), state: Session(name: "s", config: ["k": 2]))
        // The publisher reconnected and rewrote everything at seq 12 …
        #expect(try client.command(RedisWrites.fullRewrite(log, channel: channel)) == .integer(1))
        // … then Redis runs the writes of the dead connection: both are refused.
        #expect(try client.command(lateAppend) == .integer(0))
        #expect(try client.command(lateFull) == .integer(0))
        let snapshot = try #require(try RedisSnapshotReader.read(client, channel: channel))
        #expect(snapshot.seq == 12 && snapshot.chain?.history.count == 2)
        // The next append after 12 goes through.
        log.record(Envelope(.configUpdate(["k": 3]), seq: 13), state: Session(name: "s", config: ["k": 3]))
        let next = try #require(RedisWrites.incremental(log, channel: channel, syncedSeq: 12, syncedBaseSeq: 10))
        #expect(try client.command(next) == .integer(1))
        #expect(try RedisSnapshotReader.read(client, channel: channel)?.chain?.history.count == 3)
    }

    @Test("an unreachable Redis fails at once, naming the URL")
    func unreachable() throws {
        let url = try RedisURL(parsing: "redis://127.0.0.1:1")
        #expect {
            _ = try RelayFeed(url: url, channel: try RedisChannel("x"), logger: logger)
        } throws: { error in
            (error as? RedisError)?.description.contains("redis://127.0.0.1:1") == true
        }
    }
}
