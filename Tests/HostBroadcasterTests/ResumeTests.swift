import Envelope
@testable import HostBroadcaster
import Testing

@Suite struct ResumeTests {
    private func log(_ seqs: ClosedRange<Int64>, full: Set<Int64> = [], maxBytes: Int = 1 << 20) -> MessageLog {
        var log = MessageLog(maxBytes: maxBytes, maxCount: 1000)
        for seq in seqs {
            let payload: Envelope.Payload = full.contains(seq)
                ? .sessionUpdate(Session(name: "s\(seq)")) : .configUpdate(["k\(seq % 3)": .int(seq)])
            log.append(OutgoingMessage(seq: seq, isFullState: full.contains(seq), bytes: Envelope(payload, seq: seq).encoded()))
        }
        return log
    }

    @Test func noSinceMeansFullState() {
        #expect(Resume.start(since: nil, epoch: nil, currentEpoch: "e", latestSeq: 10, log: log(2...10)) == .fullState)
    }

    @Test func aSeqWithoutAnEpochMeansFullState() {
        // A position is (epoch, seq): a seq alone may be another run's, even one that looks recent.
        #expect(Resume.start(since: 7, epoch: nil, currentEpoch: "e", latestSeq: 10, log: log(2...10)) == .fullState)
        #expect(Resume.start(since: 10, epoch: nil, currentEpoch: "e", latestSeq: 10, log: log(2...10)) == .fullState)
    }

    @Test func sseEventIDsCarryTheEpoch() {
        #expect(Resume.eventID(epoch: "0a1b", seq: 42) == "0a1b:42")
        #expect(Resume.eventID(epoch: nil, seq: 42) == "42")
        #expect(Resume.eventID(epoch: "a\nb", seq: 1) == "ab:1")
    }

    @Test func ssePositionsNameTheEpochInTheIDOrTheQuery() {
        #expect(Resume.ssePosition(lastEventID: "0a1b:42", epochArgument: nil) == (42, "0a1b"))
        #expect(Resume.ssePosition(lastEventID: "0a1b:42", epochArgument: "other") == (42, "0a1b"))
        #expect(Resume.ssePosition(lastEventID: "42", epochArgument: "0a1b") == (42, "0a1b"))
        #expect(Resume.ssePosition(lastEventID: "42", epochArgument: nil) == (42, nil))
        #expect(Resume.ssePosition(lastEventID: " 0a1b:42 ", epochArgument: nil) == (42, "0a1b"))
        #expect(Resume.ssePosition(lastEventID: "0a1b:x", epochArgument: nil) == (nil, "0a1b"))
        #expect(Resume.ssePosition(lastEventID: nil, epochArgument: "e") == (nil, "e"))
    }

    @Test func anotherEpochMeansFullState() {
        #expect(Resume.start(since: 8, epoch: "old", currentEpoch: "e", latestSeq: 10, log: log(2...10)) == .fullState)
    }

    @Test func aSeqFromTheFutureMeansFullState() {
        #expect(Resume.start(since: 11, epoch: "e", currentEpoch: "e", latestSeq: 10, log: log(2...10)) == .fullState)
    }

    @Test func aSeqOlderThanTheHistoryMeansFullState() {
        #expect(Resume.start(since: 3, epoch: "e", currentEpoch: "e", latestSeq: 10, log: log(5...10)) == .fullState)
        #expect(Resume.start(since: 4, epoch: "e", currentEpoch: "e", latestSeq: 10, log: log(5...10)) == .after(4))
    }

    @Test func upToDateAndWithinTheHistoryResume() {
        #expect(Resume.start(since: 10, epoch: "e", currentEpoch: "e", latestSeq: 10, log: log(2...10)) == .after(10))
        #expect(Resume.start(since: 7, epoch: "e", currentEpoch: "e", latestSeq: 10, log: log(2...10)) == .after(7))
        #expect(Resume.start(since: 1, epoch: "e", currentEpoch: "e", latestSeq: 1, log: MessageLog(maxBytes: 10, maxCount: 10)) == .after(1))
    }

    @Test func missedConfigChangesCoalesceIntoOneUpdateAtTheNewestSeq() {
        // k(seq % 3): seqs 6..10 set k0=6→9, k1=7→10, k2=8.
        #expect(Resume.catchUp(from: 6, log: log(2...10)) == .configs(["k0": 9, "k1": 10, "k2": 8], seq: 10))
    }

    @Test func aMissedStructuralChangeMeansFullState() {
        #expect(Resume.catchUp(from: 6, log: log(2...10, full: [8])) == .fullState)
    }

    @Test func nothingMissedMeansNothingToSend() {
        #expect(Resume.catchUp(from: 11, log: log(2...10)) == .upToDate)
    }
}
