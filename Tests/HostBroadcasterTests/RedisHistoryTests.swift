import Envelope
@testable import HostBroadcaster
@testable import StateCastRelay
import Testing

/// The publisher's copy of the history and the writes it makes, without Redis.
@Suite("Redis history and writes")
struct RedisHistoryTests {
    let channel = try! RedisChannel("t")

    func history(maxCount: Int = 8, maxBytes: Int = 1 << 20) -> PublishedHistory {
        PublishedHistory(initial: Session(name: "s", config: ["k": 0]), seq: 100, epoch: "e", maxCount: maxCount, maxBytes: maxBytes)
    }

    func record(_ history: inout PublishedHistory, _ values: ClosedRange<Int>) {
        for value in values {
            var state = history.current
            state.config["k"] = .int(Int64(value))
            history.record(Envelope(.configUpdate(["k": .int(Int64(value))]), seq: history.currentSeq + 1), state: state)
        }
    }

    @Test("base plus history rebuilds the current state, across trims")
    func baseAndHistoryRebuildTheState() {
        var log = history(maxCount: 8)
        record(&log, 1...30)
        #expect(log.currentSeq == 130)
        #expect(log.entries.count >= 8 && log.entries.count <= 9)
        #expect(log.baseSeq + Int64(log.entries.count) == log.currentSeq)
        var rebuilt = log.base
        for entry in log.entries { PublishedHistory.apply(entry.envelope.payload, to: &rebuilt) }
        #expect(rebuilt == log.current)
        #expect(log.current.config["k"] == 30)
    }

    @Test("the history trims only past the limit plus one eighth, back to the limit")
    func trimsWithSlack() {
        var log = history(maxCount: 16)
        record(&log, 1...18)
        #expect(log.entries.count == 18)     // 16 + slack 2: not yet
        #expect(log.baseSeq == 100)
        record(&log, 19...19)
        #expect(log.entries.count == 16)     // over the slack: back to the limit
        #expect(log.baseSeq == 103)
    }

    @Test("a byte limit trims too, and an entry bigger than the limit leaves the base at the current state")
    func trimsByBytes() {
        var log = history(maxCount: 4096, maxBytes: 200)
        record(&log, 1...20)
        #expect(log.totalBytes <= 200 + 25)
        var state = log.current
        state.data = .string(String(repeating: "x", count: 500))
        log.record(Envelope(.sessionUpdate(state), seq: log.currentSeq + 1), state: state)
        #expect(log.entries.isEmpty)
        #expect(log.base == state && log.baseSeq == log.currentSeq)
    }

    @Test("session_updates in the history carry the epoch")
    func sessionUpdatesCarryTheEpoch() {
        var log = history()
        let state = Session(name: "new")
        log.record(Envelope(.sessionUpdate(state), seq: 101), state: state)
        #expect(log.entries.last?.envelope.epoch == "e")
        #expect(log.stateEnvelope == Envelope(.sessionUpdate(state), seq: 101, epoch: "e"))
    }

    @Test("entries(after:) reaches back only as far as the history does")
    func entriesAfter() {
        var log = history(maxCount: 8)
        record(&log, 1...20)
        let first = log.entries.first!.seq
        #expect(log.entries(after: log.currentSeq)?.isEmpty == true)
        #expect(log.entries(after: log.currentSeq - 2)?.map(\.seq) == [log.currentSeq - 1, log.currentSeq])
        #expect(log.entries(after: first - 1)?.count == log.entries.count)
        #expect(log.entries(after: first - 2) == nil)
    }

    func arguments(_ command: RedisWrites.Command) -> [String] { command.map { String(decoding: $0, as: UTF8.self) } }

    @Test("a full rewrite replaces every key and publishes the state, in one conditional script")
    func fullRewrite() {
        var log = history()
        record(&log, 1...2)
        let args = arguments(RedisWrites.fullRewrite(log, channel: channel))
        #expect(args[0] == "EVAL" && args[1] == RedisWrites.script && args[2] == "4")
        #expect(Array(args[3...6]) == ["statecast:t:state", "statecast:t:base", "statecast:t:history", "statecast:t:mark"])
        #expect(Array(args[7...12]) == ["full", "", "e:102", "e", "102", "statecast:t"])
        #expect(args[13].contains("\"seq\":102") && args[13].contains("\"epoch\":\"e\"") && args[13].contains("session_update"))
        #expect(args[14].contains("\"seq\":100"))     // the base
        #expect(args[15] == "2")                       // the history's length
        #expect(args.count == 18 && args[16].contains("\"seq\":101") && args[17].contains("\"seq\":102"))
    }

    @Test("an incremental write appends after the mark it follows, and sends the base only when it moved")
    func incremental() throws {
        var log = history(maxCount: 8)
        record(&log, 1...3)
        let plain = arguments(try #require(RedisWrites.incremental(log, channel: channel, syncedSeq: 101, syncedBaseSeq: 100)))
        #expect(Array(plain[7...12]) == ["append", "e:101", "e:103", "e", "103", "statecast:t"])
        #expect(plain[14] == "" && plain[15] == "3")
        #expect(plain.count == 18 && plain[16].contains("\"seq\":102") && plain[17].contains("\"seq\":103"))
        #expect(RedisWrites.incremental(log, channel: channel, syncedSeq: 103, syncedBaseSeq: 100)?.isEmpty == true)

        record(&log, 4...12)   // trims: the base moves
        let moved = arguments(try #require(RedisWrites.incremental(log, channel: channel, syncedSeq: 111, syncedBaseSeq: 100)))
        #expect(moved[14].contains("\"seq\":\(log.baseSeq)") && moved[15] == String(log.entries.count))
        // What Redis was told before is no longer in the history: only a full rewrite will do.
        #expect(RedisWrites.incremental(log, channel: channel, syncedSeq: 100, syncedBaseSeq: 100) == nil)
    }
}
