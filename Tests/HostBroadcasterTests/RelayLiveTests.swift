import Envelope
import HostBroadcaster
import Logging
import Testing

/// A host serving envelopes made upstream (what a relay does), over real sockets.
@Suite struct RelayLiveTests {
    private func startRelay() throws -> HostBroadcaster {
        var configuration = HostConfiguration()
        configuration.bindAddress = "127.0.0.1"
        configuration.port = 0
        configuration.initialSeq = 100
        configuration.initialEpoch = "upstream-1"
        let host = HostBroadcaster(configuration: configuration, logger: Logger(label: "test"))
        try host.start(initial: Session(name: "relayed", config: ["k": 1]))
        return host
    }

    @Test func keepsUpstreamSeqsAndEpochAndRefusesGapsAndStaleOnes() throws {
        let relay = try startRelay()
        defer { relay.stop() }
        let viewer = try RawWebSocket(port: relay.status.port)
        let first = try Envelope(decoding: Array(try viewer.readText().utf8))
        #expect(first.seq == 100 && first.epoch == "upstream-1")
        #expect(relay.relay(Envelope(.configUpdate(["k": 2]), seq: 101)) == .applied)
        #expect(relay.relay(Envelope(.configUpdate(["k": 3]), seq: 101)) == .stale)
        #expect(relay.relay(Envelope(.configUpdate(["k": 4]), seq: 103)) == .gap)
        #expect(relay.relay(Envelope(.configUpdate(["k": 4]))) == .rejected)
        #expect(try Envelope(decoding: Array(try viewer.readText().utf8)) == Envelope(.configUpdate(["k": 2]), seq: 101, epoch: "upstream-1"))
        // A config_update of another run is never merged into this one.
        #expect(relay.relay(Envelope(.configUpdate(["k": 5]), seq: 102, epoch: "upstream-2")) == .gap)
        #expect(relay.status.seq == 101)
    }

    @Test func aNewUpstreamEpochSendsEveryViewerTheFullStateAgain() throws {
        let relay = try startRelay()
        defer { relay.stop() }
        let viewer = try RawWebSocket(port: relay.status.port)
        _ = try viewer.readText()
        let restarted = Session(name: "relayed", config: ["k": 9])
        #expect(relay.relay(Envelope(.sessionUpdate(restarted), seq: 7, epoch: "upstream-2")) == .applied)
        let next = try Envelope(decoding: Array(try viewer.readText().utf8))
        #expect(next == Envelope(.sessionUpdate(restarted), seq: 7, epoch: "upstream-2"))
        #expect(relay.epoch == "upstream-2")
        #expect(relay.relay(Envelope(.configUpdate(["k": 10]), seq: 8)) == .applied)
        #expect(try Envelope(decoding: Array(try viewer.readText().utf8)).seq == 8)
    }

    @Test func statusCarriesTheExtras() throws {
        let relay = try startRelay()
        defer { relay.stop() }
        relay.setStatusExtras(["role": "relay", "degraded": false])
        let (_, body) = try RawWebSocket.httpGet(port: relay.status.port, path: "/status")
        let json = try JSONValue(parsing: body)
        #expect(json["role"] == "relay")
        #expect(json["degraded"] == false)
        #expect(json["clientCount"] != nil)
    }
}
