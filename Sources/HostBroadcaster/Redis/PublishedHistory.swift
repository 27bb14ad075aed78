import DequeModule
import Envelope

/// The publisher's copy of what Redis should hold for one channel: the
/// current state, the recent envelopes (the history), and the state just
/// before the oldest of them (the base). Pure: no I/O, tested alone.
///
/// The history is bounded like the host's own backlog (``HostConfiguration/maxViewerBacklogCount``
/// and ``HostConfiguration/maxViewerBacklogBytes``), with a slack of one
/// eighth: it is trimmed back to the limits only once it exceeds them by the
/// slack, so the base (a full state) is rewritten in Redis once per slack's
/// worth of envelopes instead of on every one. A relay's own log keeps only
/// its limits' worth of what it preloads, so the slack never shows.
struct PublishedHistory {
    struct Entry: Equatable {
        let envelope: Envelope
        let bytes: [UInt8]
        var seq: Int64 { envelope.seq ?? 0 }
    }

    let epoch: String
    let maxCount: Int
    let maxBytes: Int
    private(set) var entries: Deque<Entry> = []
    private(set) var totalBytes = 0
    /// The state before `entries.first` (or the current state when empty).
    private(set) var base: Session
    private(set) var baseSeq: Int64
    private(set) var current: Session
    private(set) var currentSeq: Int64

    init(initial: Session, seq: Int64, epoch: String, maxCount: Int, maxBytes: Int) {
        self.epoch = epoch
        self.maxCount = max(1, maxCount)
        self.maxBytes = max(0, maxBytes)
        base = initial
        baseSeq = seq
        current = initial
        currentSeq = seq
    }

    var slackCount: Int { max(1, maxCount / 8) }
    var slackBytes: Int { maxBytes / 8 }

    /// Records a broadcast envelope and the host's state after it.
    mutating func record(_ envelope: Envelope, state: Session) {
        guard let seq = envelope.seq, seq > currentSeq else { return }
        var stored = envelope
        stored.epoch = epoch
        if seq != currentSeq + 1 {
            // Cannot happen with a host's own broadcasts; never bridge a gap.
            entries.removeAll()
            totalBytes = 0
            base = state
            baseSeq = seq
            current = state
            currentSeq = seq
            return
        }
        let entry = Entry(envelope: stored, bytes: stored.encoded())
        entries.append(entry)
        totalBytes += entry.bytes.count
        current = state
        currentSeq = seq
        if entries.count > maxCount + slackCount || totalBytes > maxBytes + slackBytes {
            while let first = entries.first, entries.count > maxCount || totalBytes > maxBytes {
                entries.removeFirst()
                totalBytes -= first.bytes.count
                Self.apply(first.envelope.payload, to: &base)
                baseSeq = first.seq
            }
        }
    }

    /// The entries after `seq`, if the history still holds all of them (nil: it does not reach back).
    func entries(after seq: Int64) -> ArraySlice<Entry>? {
        if seq >= currentSeq { return [] }
        guard let first = entries.first, seq + 1 >= first.seq else { return nil }
        return Array(entries)[Int(seq + 1 - first.seq)...]
    }

    /// The current state as a `session_update` envelope.
    var stateEnvelope: Envelope { Envelope(.sessionUpdate(current), seq: currentSeq, epoch: epoch) }
    /// The base as a `session_update` envelope.
    var baseEnvelope: Envelope { Envelope(.sessionUpdate(base), seq: baseSeq, epoch: epoch) }

    static func apply(_ payload: Envelope.Payload, to session: inout Session) {
        switch payload {
        case .sessionUpdate(let replacement): session = replacement
        case .configUpdate(let changes): for (key, value) in changes { session.config[key] = value }
        }
    }
}
