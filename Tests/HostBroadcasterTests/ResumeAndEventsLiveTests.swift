import Envelope
import HostBroadcaster
import Logging
import Testing
import ViewerClient

#if canImport(Glibc)
import Glibc
#endif

/// Resume (`?since=&epoch=`) and Server-Sent Events against a real host.
@Suite struct ResumeAndEventsLiveTests {
    let initial = Session(name: "resume", data: ["blob": .string(String(repeating: "d", count: 4000))], config: ["speed": 1, "mode": "wave"])

    private func startHost(_ adjust: (inout HostConfiguration) -> Void = { _ in }) throws -> HostBroadcaster {
        var configuration = HostConfiguration()
        configuration.bindAddress = "127.0.0.1"
        configuration.port = 0
        adjust(&configuration)
        let host = HostBroadcaster(configuration: configuration, logger: Logger(label: "test"))
        try host.start(initial: initial)
        return host
    }

    @Test func resumeAfterMissedConfigUpdatesSendsOnlyThoseKeys() throws {
        let host = try startHost()
        defer { host.stop() }
        let first = try RawWebSocket(port: host.status.port)
        let full = try first.readText()
        let start = try Envelope(decoding: Array(full.utf8))
        let since = try #require(start.seq)
        host.broadcast(.configUpdate(["speed": 2]))
        host.broadcast(.configUpdate(["mode": "square"]))
        host.broadcast(.configUpdate(["speed": 3]))
        let last = host.broadcast(.configUpdate(["mode": "saw"]))
        let returning = try RawWebSocket(port: host.status.port, path: "/?since=\(since)&epoch=\(host.epoch!)")
        let text = try returning.readText()
        let resumed = try Envelope(decoding: Array(text.utf8))
        #expect(resumed == Envelope(.configUpdate(["speed": 3, "mode": "saw"]), seq: last, epoch: host.epoch))
        #expect(text.utf8.count < full.utf8.count / 10)
        // What one of our viewers holds after the two messages, by its own rules.
        var viewer = ViewerState()
        _ = viewer.apply(.text(Array(full.utf8)))
        _ = viewer.apply(.text(Array(text.utf8)))
        #expect(viewer.session == host.session)
    }

    @Test func resumeWithAnotherEpochOrFromBeforeTheHistoryGetsTheFullState() throws {
        let host = try startHost { $0.maxViewerBacklogCount = 3 }
        defer { host.stop() }
        let seq0 = host.status.seq
        for step in 0..<10 { host.broadcast(.configUpdate(["speed": .int(Int64(step))])) }
        let otherEpoch = try RawWebSocket(port: host.status.port, path: "/?since=\(host.status.seq)&epoch=0000000000000000")
        let a = try Envelope(decoding: Array(try otherEpoch.readText().utf8))
        #expect(a.type == "session_update")
        #expect(a.seq == host.status.seq)
        let tooOld = try RawWebSocket(port: host.status.port, path: "/?since=\(seq0)&epoch=\(host.epoch!)")
        let b = try Envelope(decoding: Array(try tooOld.readText().utf8))
        #expect(b.type == "session_update")
        guard case .sessionUpdate(let session) = b.payload else { return }
        #expect(session == host.session)
    }

    @Test func aViewerAlreadyUpToDateGetsNothingUntilTheNextChange() throws {
        let host = try startHost()
        defer { host.stop() }
        let current = host.status.seq
        let viewer = try RawWebSocket(port: host.status.port, path: "/?since=\(current)&epoch=\(host.epoch!)")
        let next = host.broadcast(.configUpdate(["speed": 9]))
        let first = try Envelope(decoding: Array(try viewer.readText().utf8))
        #expect(first == Envelope(.configUpdate(["speed": 9]), seq: next, epoch: host.epoch))
        #expect(host.status.clientCount == 1)
    }

    @Test func eventStreamCarriesStateUpdatesAndResumesFromLastEventID() throws {
        let host = try startHost()
        defer { host.stop() }
        let stream = try RawHTTPStream(port: host.status.port, path: "/events")
        #expect(stream.head.contains("200"))
        #expect(stream.head.lowercased().contains("content-type: text/event-stream"))
        #expect(stream.head.lowercased().contains("cache-control: no-cache"))
        #expect(stream.head.lowercased().contains("x-accel-buffering: no"))
        #expect(try stream.readEvent() == ["retry": "2000"])
        let first = try stream.readEvent()
        #expect(first["event"] == "session_update")
        let epoch = try #require(host.epoch)
        #expect(first["id"] == "\(epoch):\(host.status.seq)")
        #expect(try Session(json: try JSONValue(parsing: first["data"] ?? "")) == initial)
        let seq = host.broadcast(.configUpdate(["speed": 5]))
        let update = try stream.readEvent()
        #expect(update == ["event": "config_update", "id": "\(epoch):\(seq)", "data": #"{"speed":5}"#])
        #expect(host.status.clientCount == 1)

        host.broadcast(.configUpdate(["mode": "saw"]))
        let later = host.broadcast(.configUpdate(["speed": 6]))
        let resumed = try RawHTTPStream(port: host.status.port, path: "/events", headers: ["Last-Event-ID: \(epoch):\(seq)"])
        _ = try resumed.readEvent()
        #expect(try resumed.readEvent() == ["event": "config_update", "id": "\(epoch):\(later)", "data": #"{"mode":"saw","speed":6}"#])
        let byQuery = try RawHTTPStream(port: host.status.port, path: "/events?lastEventId=\(seq)&epoch=\(epoch)")
        _ = try byQuery.readEvent()
        #expect(try byQuery.readEvent()["id"] == "\(epoch):\(later)")
        // A bare seq names no run: it may be another run's, so the full state.
        let bare = try RawHTTPStream(port: host.status.port, path: "/events", headers: ["Last-Event-ID: \(seq)"])
        _ = try bare.readEvent()
        #expect(try bare.readEvent()["event"] == "session_update")
    }

    @Test func idleEventStreamGetsKeepaliveComments() throws {
        let host = try startHost { $0.sseKeepaliveInterval = .milliseconds(200) }
        defer { host.stop() }
        let stream = try RawHTTPStream(port: host.status.port, path: "/events")
        _ = try stream.readEvent()
        _ = try stream.readEvent()
        #expect(try stream.readEvent() == [":": "keepalive"])
        #expect(try stream.readEvent() == [":": "keepalive"])
    }
}

/// A streaming HTTP GET over a blocking socket that reads SSE events.
final class RawHTTPStream {
    let fd: Int32
    let head: String
    private var buffer: [UInt8] = []

    init(port: Int, path: String, headers: [String] = []) throws {
        let fd = try RawWebSocket.connect(port: port, timeoutSeconds: 5)
        let request = (["GET \(path) HTTP/1.1", "Host: 127.0.0.1", "Accept: text/event-stream"] + headers).joined(separator: "\r\n") + "\r\n\r\n"
        _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        while received.firstRange(of: [13, 10, 13, 10] as [UInt8]) == nil {
            try Self.fill(fd, &received)
        }
        let range = received.firstRange(of: [13, 10, 13, 10] as [UInt8])!
        self.fd = fd
        head = String(decoding: received[..<range.lowerBound], as: UTF8.self)
        buffer = Array(received[range.upperBound...])
    }

    deinit { close(fd) }

    /// The next event as field → value (a comment line gives ":" → text).
    func readEvent() throws -> [String: String] {
        while true {
            if let range = buffer.firstRange(of: [10, 10] as [UInt8]) {
                let block = String(decoding: buffer[..<range.lowerBound], as: UTF8.self)
                buffer.removeSubrange(..<range.upperBound)
                var fields: [String: String] = [:]
                for line in block.split(separator: "\n") {
                    if line.hasPrefix(":") {
                        fields[":"] = line.dropFirst().trimmingCharacters(in: .whitespaces)
                    } else if let colon = line.firstIndex(of: ":") {
                        fields[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                    }
                }
                return fields
            }
            try Self.fill(fd, &buffer)
        }
    }

    private static func fill(_ fd: Int32, _ buffer: inout [UInt8]) throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { throw RawWebSocket.Failure.closed }
        buffer += chunk[0..<count]
    }
}
