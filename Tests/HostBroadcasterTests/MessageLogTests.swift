@testable import HostBroadcaster
import Testing

@Suite struct MessageLogTests {
    private func message(_ seq: Int64, bytes: Int = 10) -> OutgoingMessage {
        OutgoingMessage(seq: seq, isFullState: false, bytes: [UInt8](repeating: 65, count: bytes))
    }

    @Test func holdsMessagesBySeq() {
        var log = MessageLog(maxBytes: 1000, maxCount: 100)
        for seq in Int64(2)...6 { log.append(message(seq)) }
        #expect(log.firstSeq == 2)
        #expect(log.lastSeq == 6)
        #expect(log.message(seq: 4)?.seq == 4)
        #expect(log.message(seq: 1) == nil)
        #expect(log.message(seq: 7) == nil)
    }

    @Test func trimsByBytesAndCount() {
        var bytes = MessageLog(maxBytes: 35, maxCount: 100)
        for seq in Int64(1)...10 { bytes.append(message(seq)) }
        #expect(bytes.totalBytes <= 35)
        #expect(bytes.firstSeq == 8)
        var count = MessageLog(maxBytes: 1 << 20, maxCount: 4)
        for seq in Int64(1)...10 { count.append(message(seq)) }
        #expect(count.messages.count == 4)
        #expect(count.firstSeq == 7)
    }

    @Test func keepsTheNewestMessageEvenWhenItAloneExceedsTheCap() {
        var log = MessageLog(maxBytes: 5, maxCount: 100)
        log.append(message(1, bytes: 50))
        #expect(log.lastSeq == 1)
        log.append(message(2, bytes: 50))
        #expect(log.firstSeq == 2)
    }

    @Test func positionTellsUpToDatePendingAndFellBehind() {
        var log = MessageLog(maxBytes: 30, maxCount: 100)
        #expect(log.position(of: 1) == .upToDate)
        for seq in Int64(1)...5 { log.append(message(seq)) }
        #expect(log.position(of: 6) == .upToDate)
        #expect(log.position(of: 5) == .pending)
        #expect(log.position(of: 3) == .pending)
        #expect(log.position(of: 2) == .fellBehind)
    }

    @Test func aGapStartsTheLogAfresh() {
        var log = MessageLog(maxBytes: 1000, maxCount: 100)
        log.append(message(1))
        log.append(message(2))
        log.append(message(9))
        #expect(log.firstSeq == 9)
        #expect(log.position(of: 3) == .fellBehind)
    }
}
