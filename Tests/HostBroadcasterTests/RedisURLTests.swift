@testable import HostBroadcaster
@testable import StateCastRelay
import Testing

@Suite("Redis URL and channel")
struct RedisURLTests {
    @Test("accepted forms", arguments: [
        ("redis://127.0.0.1:6380", "127.0.0.1", 6380, 0),
        ("redis://localhost", "localhost", 6379, 0),
        ("redis://cache.internal:6379/2", "cache.internal", 6379, 2),
        ("REDIS://h:1/", "h", 1, 0),
        ("redis://[::1]:7000/15", "::1", 7000, 15),
    ])
    func accepts(text: String, host: String, port: Int, database: Int) throws {
        let url = try RedisURL(parsing: text)
        #expect(url.host == host && url.port == port && url.database == database)
        #expect(url.description == text)
    }

    @Test("refused forms name the problem and the URL", arguments: [
        ("", "is empty"),
        ("127.0.0.1:6379", "no redis:// scheme"),
        ("http://h:1", "scheme \"http\""),
        ("rediss://h:1", "TLS"),
        ("redis://:secret@h:1", "user info"),
        ("redis://h:1?db=2", "query"),
        ("redis://h:0", "invalid port"),
        ("redis://h:65536", "invalid port"),
        ("redis://h:abc", "invalid port"),
        ("redis://h:", "invalid port"),
        ("redis://:6379", "no host"),
        ("redis://h:1/x", "invalid database"),
        ("redis://h:1/2/3", "invalid database"),
        ("redis://h h:1", "spaces"),
        ("redis://::1:6379", "more than one ':'"),
        ("redis://[::1:6379", "closing ]"),
        ("redis://h!:1", "invalid host"),
    ])
    func refuses(text: String, problem: String) {
        do {
            let url = try RedisURL(parsing: text)
            Issue.record("accepted \(url)")
        } catch {
            #expect(error.description.contains(problem), "\(error.description)")
            #expect(error.description.contains("\"\(text)\""), "\(error.description)")
        }
    }

    @Test("channel names and their keys")
    func channels() throws {
        let channel = try RedisChannel("lobby-1.main_x")
        #expect(channel.pubsub == "statecast:lobby-1.main_x")
        #expect(channel.stateKey == "statecast:lobby-1.main_x:state")
        #expect(channel.baseKey == "statecast:lobby-1.main_x:base")
        #expect(channel.historyKey == "statecast:lobby-1.main_x:history")
        for bad in ["", "a b", "a:b", "a*", "ü", String(repeating: "x", count: 201)] {
            #expect(throws: RedisError.self, "\(bad)") { try RedisChannel(bad) }
        }
    }

    @Test("the backoff doubles from 100 ms to 2 s and resets")
    func backoff() {
        var backoff = RedisBackoff()
        let delays = (0..<7).map { _ in backoff.nextDelay() }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .seconds(2), .seconds(2)])
        backoff.reset()
        #expect(backoff.nextDelay() == .milliseconds(100))
    }
}
