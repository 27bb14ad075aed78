import DequeModule

/// The recent broadcasts, by seq, shared by every viewer.
///
/// A viewer is just a cursor (`nextSeq`) into this log, so a broadcast costs
/// O(1) to record whatever the number of viewers, and nothing is copied per
/// viewer. The log keeps at most `maxBytes` / `maxCount` of updates: a viewer
/// whose cursor falls off the front is further behind than the backlog cap
/// allows and gets one fresh full state instead (SPEC §3, slow viewers).
struct MessageLog {
    private(set) var messages: Deque<OutgoingMessage> = []
    private(set) var totalBytes = 0
    let maxBytes: Int
    let maxCount: Int

    init(maxBytes: Int, maxCount: Int) {
        self.maxBytes = max(0, maxBytes)
        self.maxCount = max(1, maxCount)
    }

    /// Seq of the oldest message held, if any.
    var firstSeq: Int64? { messages.first?.seq }
    /// Seq of the newest message held, if any.
    var lastSeq: Int64? { messages.last?.seq }

    /// Appends the next message (seqs must increase by one) and trims the front.
    mutating func append(_ message: OutgoingMessage) {
        if let last = messages.last, message.seq != last.seq + 1 {
            // A gap cannot be bridged: nobody may step over it, so start afresh.
            messages.removeAll()
            totalBytes = 0
        }
        messages.append(message)
        totalBytes += message.payloadCount
        while messages.count > 1, totalBytes > maxBytes || messages.count > maxCount {
            totalBytes -= messages.removeFirst().payloadCount
        }
    }

    /// Forgets every message (a relay's upstream started a new epoch).
    mutating func removeAll() {
        messages.removeAll()
        totalBytes = 0
    }

    /// The message with this seq, if still held.
    func message(seq: Int64) -> OutgoingMessage? {
        guard let first = messages.first?.seq, seq >= first else { return nil }
        let index = Int(seq - first)
        return index < messages.count ? messages[index] : nil
    }

    /// Where a viewer whose next wanted seq is `nextSeq` stands.
    func position(of nextSeq: Int64) -> Position {
        guard let first = firstSeq, let last = lastSeq else { return .upToDate }
        if nextSeq > last { return .upToDate }
        if nextSeq < first { return .fellBehind }
        return .pending
    }

    enum Position: Equatable { case upToDate, pending, fellBehind }
}
