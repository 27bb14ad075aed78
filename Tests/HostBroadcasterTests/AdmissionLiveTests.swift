import Envelope
import HostBroadcaster
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Refusals before the upgrade, and the echo endpoint, against a real host.
@Suite struct AdmissionLiveTests {
    private func startHost(_ adjust: (inout HostConfiguration) -> Void) throws -> HostBroadcaster {
        var configuration = HostConfiguration()
        configuration.bindAddress = "127.0.0.1"
        configuration.port = 0
        adjust(&configuration)
        let host = HostBroadcaster(configuration: configuration, logger: Logger(label: "test"))
        try host.start(initial: Session(name: "guarded", config: ["k": 1]))
        return host
    }

    /// Sends a raw request and returns the response's status line.
    private func statusLine(port: Int, _ lines: [String]) throws -> String {
        let (status, _) = try RawWebSocket.rawRequest(port: port, text: lines.joined(separator: "\r\n") + "\r\n\r\n")
        return status
    }

    private func upgradeLines(path: String = "/", extra: [String] = [], key: String = "dGhlIHNhbXBsZSBub25jZQ==", version: String = "13", method: String = "GET") -> [String] {
        ["\(method) \(path) HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
         "Sec-WebSocket-Key: \(key)", "Sec-WebSocket-Version: \(version)"] + extra
    }

    @Test func tokenIsRequiredAndStatusIsReducedWithoutIt() throws {
        let host = try startHost { $0.token = "s3cret" }
        defer { host.stop() }
        let port = host.status.port
        #expect(try statusLine(port: port, upgradeLines()).hasPrefix("HTTP/1.1 401"))
        #expect(try statusLine(port: port, upgradeLines(path: "/?token=nope")).hasPrefix("HTTP/1.1 401"))
        #expect(try statusLine(port: port, upgradeLines(path: "/?token=s3cret")).hasPrefix("HTTP/1.1 101"))
        #expect(try statusLine(port: port, upgradeLines(extra: ["Authorization: Bearer s3cret"])).hasPrefix("HTTP/1.1 101"))
        let (_, open) = try RawWebSocket.httpGet(port: port, path: "/status")
        #expect(try JSONValue(parsing: open) == ["running": true])
        let (_, full) = try RawWebSocket.httpGet(port: port, path: "/status?token=s3cret")
        #expect(try JSONValue(parsing: full)["clientCount"] != nil)
        #expect(try RawWebSocket.httpGet(port: port, path: "/events").status.contains("401"))
    }

    @Test func unlistedOriginGets403() throws {
        let host = try startHost { $0.allowedOrigins = ["https://ok.example"] }
        defer { host.stop() }
        let port = host.status.port
        #expect(try statusLine(port: port, upgradeLines(extra: ["Origin: https://evil.example"])).hasPrefix("HTTP/1.1 403"))
        #expect(try statusLine(port: port, upgradeLines(extra: ["Origin: https://ok.example"])).hasPrefix("HTTP/1.1 101"))
    }

    @Test func fullHostAnswers503AndKeepsServingTheOthers() throws {
        let host = try startHost { $0.maxClients = 2 }
        defer { host.stop() }
        let port = host.status.port
        let a = try RawWebSocket(port: port)
        let b = try RawWebSocket(port: port)
        _ = try a.readText()
        _ = try b.readText()
        #expect(try statusLine(port: port, upgradeLines()).hasPrefix("HTTP/1.1 503"))
        host.broadcast(.configUpdate(["k": 2]))
        #expect(try Envelope(decoding: Array(try a.readText().utf8)).payload == .configUpdate(["k": 2]))
    }

    @Test func handshakeViolationsGetTheirStatus() throws {
        let host = try startHost { _ in }
        defer { host.stop() }
        let port = host.status.port
        #expect(try statusLine(port: port, upgradeLines(version: "8")).hasPrefix("HTTP/1.1 426"))
        #expect(try statusLine(port: port, upgradeLines(key: "c2hvcnQ=")).hasPrefix("HTTP/1.1 400"))
        #expect(host.status.clientCount == 0)
    }

    @Test func echoEndpointEchoesTextAndBinaryAndIsNoViewer() throws {
        let host = try startHost { $0.echoPath = "/echo" }
        defer { host.stop() }
        let echo = try RawWebSocket(port: host.status.port, path: "/echo")
        try echo.sendFrame(opcode: 1, payload: Array("hello".utf8))
        #expect(try echo.readFrame() == RawWebSocket.Frame(opcode: 1, payload: Array("hello".utf8)))
        try echo.sendFrame(opcode: 2, payload: [0, 1, 2, 255])
        #expect(try echo.readFrame() == RawWebSocket.Frame(opcode: 2, payload: [0, 1, 2, 255]))
        #expect(host.status.clientCount == 0)
    }
}
