import Testing
@testable import ViewerClient

@Suite("Viewer URL parsing")
struct ViewerURLTests {
    struct Good: Sendable, CustomTestStringConvertible {
        let text: String
        let secure: Bool
        let host: String
        let port: Int
        let path: String
        let ipv6: Bool
        var testDescription: String { text }
    }

    @Test("valid URLs", arguments: [
        Good(text: "ws://localhost:9876", secure: false, host: "localhost", port: 9876, path: "/", ipv6: false),
        Good(text: "ws://192.168.1.20:9876/", secure: false, host: "192.168.1.20", port: 9876, path: "/", ipv6: false),
        Good(text: "WS://Host.Example.com", secure: false, host: "Host.Example.com", port: 80, path: "/", ipv6: false),
        Good(text: "wss://host.example.com", secure: true, host: "host.example.com", port: 443, path: "/", ipv6: false),
        Good(text: "wss://host.example.com:8443/live?token=abc", secure: true, host: "host.example.com", port: 8443,
             path: "/live?token=abc", ipv6: false),
        Good(text: "ws://127.0.0.1:9876?token=x%20y", secure: false, host: "127.0.0.1", port: 9876,
             path: "/?token=x%20y", ipv6: false),
        Good(text: "ws://[::1]:9876/", secure: false, host: "::1", port: 9876, path: "/", ipv6: true),
        Good(text: "ws://[fe80::1:2]", secure: false, host: "fe80::1:2", port: 80, path: "/", ipv6: true),
        Good(text: "ws://[2001:db8:0:0:0:0:0:1]:1", secure: false, host: "2001:db8:0:0:0:0:0:1", port: 1, path: "/", ipv6: true),
        Good(text: "ws://[::ffff:10.0.0.1]:65535", secure: false, host: "::ffff:10.0.0.1", port: 65535, path: "/", ipv6: true),
        Good(text: "ws://my-host:9876/a/b", secure: false, host: "my-host", port: 9876, path: "/a/b", ipv6: false),
        // The browser page's address and a bare HOST:PORT (issue 17).
        Good(text: "http://192.168.1.20:9876/", secure: false, host: "192.168.1.20", port: 9876, path: "/", ipv6: false),
        Good(text: "HTTPS://host.example.com/?token=t", secure: true, host: "host.example.com", port: 443,
             path: "/?token=t", ipv6: false),
        Good(text: "localhost:9876", secure: false, host: "localhost", port: 9876, path: "/", ipv6: false),
        Good(text: "[::1]:9876/live", secure: false, host: "::1", port: 9876, path: "/live", ipv6: true),
    ])
    func parsesValidURLs(_ good: Good) throws {
        let url = try ViewerURL(parsing: good.text)
        #expect(url.secure == good.secure)
        #expect(url.host == good.host)
        #expect(url.port == good.port)
        #expect(url.path == good.path)
        #expect(url.isIPv6 == good.ipv6)
    }

    @Test("bad URLs are refused with a sentence naming the problem and an example", arguments: [
        ("", "is empty"),
        ("localhost", "has no ws:// scheme and no port"),
        ("http://localhost:", "has a colon but no port number"),
        ("ftp://localhost", "uses the scheme \"ftp\""),
        ("ws://", "has no host"),
        ("ws://:9876", "has no host"),
        ("ws://localhost:", "has a colon but no port number"),
        ("ws://localhost:0", "a port is a number from 1 to 65535"),
        ("ws://localhost:65536", "a port is a number from 1 to 65535"),
        ("ws://localhost:98a", "a port is a number from 1 to 65535"),
        ("ws://local host:9876", "contains a space"),
        ("ws://localhost:9876/#top", "has a #fragment"),
        ("ws://user@localhost:9876", "has user info"),
        ("ws://256.1.1.1:9876", "not an IPv4 address"),
        ("ws://1.2.3:9876", "not an IPv4 address"),
        ("ws://[::1:9876", "without its closing ]"),
        ("ws://[1:2:3]:9876", "not an IPv6 address"),
        ("ws://[::1::2]", "not an IPv6 address"),
        ("ws://[fe80::1%25eth0]", "IPv6 zone"),
        ("ws://::1:9876", "IPv6 addresses go in brackets"),
        ("ws://-bad-.example:9876", "not a valid host name"),
        ("ws://under_score:9876", "not a valid host name"),
        ("ws://hôte:9876", "non-ASCII"),
    ])
    func refusesBadURLs(_ text: String, _ problem: String) {
        #expect {
            _ = try ViewerURL(parsing: text)
        } throws: { error in
            guard let error = error as? ViewerError else { return false }
            let sentence = error.description
            return error.code == .badURL && sentence.contains(problem) && sentence.contains("ws://")
                && sentence.hasSuffix(".") && sentence.filter({ $0 == "\n" }).isEmpty
        }
    }

    @Test("how a URL was read is said when it was not ws:// or wss:// with a port", arguments: [
        ("ws://h:9876/", nil),
        ("wss://[::1]:8443", nil),
        ("http://h:9876/", "using ws://h:9876/ for http://h:9876/"),
        ("https://h:8443/?token=secret", "using wss://h:8443/?token=REDACTED for https://h:8443/?token=REDACTED"),
        ("h:9876", "using ws://h:9876/ for h:9876"),
        ("ws://h", "using ws://h:80/: the URL has no port, so 80; StateCast hosts listen on 9876 unless started with --port"),
        ("wss://[::1]/", "using wss://[::1]:443/: the URL has no port, so 443; StateCast hosts listen on 9876 unless started with --port"),
        ("http://h/", "using ws://h:80/ for http://h/: the URL has no port, so 80; StateCast hosts listen on 9876 unless started with --port"),
        ("ftp://h:1", nil),
    ] as [(String, String?)])
    func interpretation(_ text: String, _ sentence: String?) {
        #expect(ViewerURL.interpretation(of: text) == sentence)
    }

    @Test("a query is appended to the path's own query")
    func appendingQuery() throws {
        #expect(try ViewerURL(parsing: "ws://h:1").path(appendingQuery: "since=1") == "/?since=1")
        #expect(try ViewerURL(parsing: "ws://h:1/live?token=t").path(appendingQuery: "since=1") == "/live?token=t&since=1")
        #expect(try ViewerURL(parsing: "ws://h:1/?").path(appendingQuery: "since=1") == "/?since=1")
        #expect(try ViewerURL(parsing: "ws://h:1/x").path(appendingQuery: "") == "/x")
    }

    @Test("the canonical form spells the port and brackets IPv6 hosts")
    func canonicalDescription() throws {
        #expect(try ViewerURL(parsing: "ws://[::1]").description == "ws://[::1]:80/")
        #expect(try ViewerURL(parsing: "wss://h?x=1").description == "wss://h:443/?x=1")
        #expect(try ViewerURL(parsing: "ws://h:9876").hostHeader == "h:9876")
        #expect(try ViewerURL(parsing: "ws://[::1]").hostHeader == "[::1]")
    }
}
