import Envelope
import Foundation
import HostBroadcaster
import Logging
import Testing

/// A real host on a free loopback port, talked to over real sockets.
@Suite struct LiveHostTests {
    let initial = Session(name: "live", data: ["points": [1, 2, 3]], config: ["speed": 1.5, "mode": "wave"], metadata: [:])

    private func startHost(_ adjust: (inout HostConfiguration) -> Void = { _ in }) throws -> HostBroadcaster {
        var configuration = HostConfiguration()
        configuration.bindAddress = "127.0.0.1"
        configuration.port = 0
        configuration.initialSeq = 1
        adjust(&configuration)
        let host = HostBroadcaster(configuration: configuration, logger: Logger(label: "test"))
        try host.start(initial: initial)
        return host
    }

    private func envelope(_ text: String) throws -> Envelope {
        try Envelope(decoding: Array(text.utf8))
    }

    @Test func newcomerGetsTheCurrentStateAtOnce() throws {
        let host = try startHost()
        defer { host.stop() }
        let viewer = try RawWebSocket(port: host.status.port)
        let first = try envelope(try viewer.readText())
        #expect(first == Envelope(.sessionUpdate(initial), seq: 1, epoch: host.epoch))
    }

    @Test func broadcastReachesEveryViewerInSeqOrderAndNewcomersGetTheLatestState() throws {
        let host = try startHost()
        defer { host.stop() }
        let viewers = try (0..<5).map { _ in try RawWebSocket(port: host.status.port) }
        for viewer in viewers { _ = try viewer.readText() }
        let seqA = host.broadcast(.configUpdate(["speed": 2]))
        let seqB = host.broadcast(.configUpdate(["mode": "square"]))
        // A key viewers do not have yet: a derived whitelist would reject it, so the full state goes out.
        let seqC = host.broadcast(.configUpdate(["gain": 0.5]))
        #expect(seqA == 2 && seqB == 3 && seqC == 4)
        var expected = initial
        expected.config = ["speed": 2, "mode": "square", "gain": 0.5]
        for viewer in viewers {
            #expect(try envelope(try viewer.readText()) == Envelope(.configUpdate(["speed": 2]), seq: 2, epoch: host.epoch))
            #expect(try envelope(try viewer.readText()) == Envelope(.configUpdate(["mode": "square"]), seq: 3, epoch: host.epoch))
            #expect(try envelope(try viewer.readText()) == Envelope(.sessionUpdate(expected), seq: 4, epoch: host.epoch))
        }
        let newcomer = try RawWebSocket(port: host.status.port)
        #expect(try envelope(try newcomer.readText()) == Envelope(.sessionUpdate(expected), seq: 4, epoch: host.epoch))
    }

    @Test func statusReportsViewersAndUnknownPathsAre404() throws {
        let host = try startHost()
        defer { host.stop() }
        let viewers = try (0..<3).map { _ in try RawWebSocket(port: host.status.port) }
        for viewer in viewers { _ = try viewer.readText() }
        let (statusLine, body) = try RawWebSocket.httpGet(port: host.status.port, path: "/status")
        #expect(statusLine.contains("200"))
        let json = try JSONValue(parsing: body)
        #expect(json["running"] == true)
        #expect(json["port"] == .int(Int64(host.status.port)))
        #expect(json["clientCount"] == 3)
        #expect(json["seq"] == 1)
        #expect(json["localIp"]?.stringValue?.isEmpty == false)
        #expect(json["uptimeSeconds"] != nil)
        let (missing, _) = try RawWebSocket.httpGet(port: host.status.port, path: "/nope")
        #expect(missing.contains("404"))
    }

    @Test func oversizedIncomingMessageClosesOnlyThatViewerWith1009() throws {
        let host = try startHost { $0.maxIncomingMessageBytes = 64 * 1024 }
        defer { host.stop() }
        let rude = try RawWebSocket(port: host.status.port)
        let polite = try RawWebSocket(port: host.status.port)
        _ = try rude.readText()
        _ = try polite.readText()
        // Send from another thread while this one reads: the host may close before taking it all.
        let frame = RawWebSocket.maskedFrame(opcode: 1, payload: [UInt8](repeating: 0x61, count: 1 << 20))
        let fd = rude.fd
        Thread { RawWebSocket.sendAll(fd: fd, frame) }.start()
        var closeCode: Int?
        while closeCode == nil {
            let frame = try rude.readFrame()
            if frame.opcode == 8, frame.payload.count >= 2 { closeCode = Int(frame.payload[0]) << 8 | Int(frame.payload[1]) }
        }
        #expect(closeCode == 1009)
        host.broadcast(.configUpdate(["speed": 3]))
        #expect(try envelope(try polite.readText()).seq == 2)
    }

    @Test func stopClosesViewersWith1001AndReleasesThePort() throws {
        let host = try startHost()
        let port = host.status.port
        let viewer = try RawWebSocket(port: port)
        _ = try viewer.readText()
        host.stop()
        var closeCode: Int?
        while closeCode == nil {
            let frame = try viewer.readFrame()
            if frame.opcode == 8, frame.payload.count >= 2 { closeCode = Int(frame.payload[0]) << 8 | Int(frame.payload[1]) }
        }
        #expect(closeCode == 1001)
        #expect(host.status.running == false)
        let again = try startHost { $0.port = port }
        #expect(again.status.port == port)
        again.stop()
    }

    @Test func busyPortIsReportedWithTheFlagToChange() throws {
        let host = try startHost()
        defer { host.stop() }
        let second = HostBroadcaster(configuration: {
            var configuration = HostConfiguration()
            configuration.bindAddress = "127.0.0.1"
            configuration.port = host.status.port
            return configuration
        }(), logger: Logger(label: "test"))
        let error = #expect(throws: HostError.self) { try second.start(initial: initial) }
        #expect(error?.isPortInUse == true)
        #expect(error?.description.contains("--port") == true)
        #expect(error?.description.contains("\(host.status.port)") == true)
    }

    @Test func viewerFarBehindGetsOneFreshFullStateInsteadOfItsBacklog() throws {
        let host = try startHost { $0.maxViewerBacklogBytes = 64 * 1024 }
        defer { host.stop() }
        let viewer = try RawWebSocket(port: host.status.port)
        _ = try viewer.readText()
        // ~24 MB go out while the viewer does not read: far more than the backlog plus all
        // the kernel's loopback socket buffers can hold (4 MiB send, 6 MiB receive at most),
        // so the host must drop its queued updates whatever its service thread's pace.
        let updates = 6000
        let blob = String(repeating: "x", count: 4000)
        var last: Int64 = 1
        // "mode" is a string key of the first state: every broadcast is a config_update.
        for step in 0..<updates { last = host.broadcast(.configUpdate(["mode": .string("\(step) \(blob)")])) }
        var seqs: [Int64] = [1]
        var fullStates: [(seq: Int64, session: Session)] = []
        while seqs.last! < last {
            let next = try envelope(try viewer.readText())
            let seq = try #require(next.seq)
            #expect(seq > seqs.last!)
            if case .sessionUpdate(let session) = next.payload {
                // A fresh full state replaces dropped updates: it never follows its predecessor directly.
                #expect(seq > seqs.last! + 1, "a full state at seq \(seq) right after \(seqs.last!)")
                fullStates.append((seq, session))
            }
            seqs.append(seq)
        }
        // Conflated: most updates never reached it, and it caught up with one full
        // state equal to the host's, at the newest seq, read last.
        #expect(seqs.count < updates / 2, "the stalled viewer read \(seqs.count) of \(updates) updates")
        let final = try #require(fullStates.last, "no fresh full state after falling behind")
        #expect(final.seq == last)
        #expect(final.session == host.session)
        // In step again: the next change is the next thing it reads.
        let after = host.broadcast(.configUpdate(["mode": "done"]))
        let next = try envelope(try viewer.readText())
        #expect(next.payload == .configUpdate(["mode": "done"]) && next.seq == after)
    }
}
