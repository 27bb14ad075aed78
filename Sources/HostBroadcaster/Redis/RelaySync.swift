import Envelope

/// What a relay does with what it reads from Redis and with each pub/sub
/// message. Pure decisions, tested without Redis or sockets.
///
/// The relay's one rule: never serve an older seq after a newer one of the
/// same epoch, and never step over a missing seq (that would show a wrong
/// state); when in doubt, read the state from Redis again.
enum RelaySync {
    /// What Redis holds for a channel, read in one transaction.
    struct Snapshot: Equatable {
        /// `statecast:NAME:state`: a `session_update` with seq and epoch.
        var state: Envelope
        /// `statecast:NAME:base`, if present.
        var base: Envelope?
        /// `statecast:NAME:history`, oldest first.
        var history: [Envelope]

        var seq: Int64 { state.seq ?? 0 }
        var epoch: String { state.epoch ?? "" }

        /// Base and history, when they form one unbroken run of seqs that ends at the state.
        var chain: (base: Envelope, history: [Envelope])? {
            guard let base, let baseSeq = base.seq, base.epoch == state.epoch,
                  case .sessionUpdate = base.payload
            else { return nil }
            var expected = baseSeq + 1
            for envelope in history {
                guard envelope.seq == expected else { return nil }
                if case .sessionUpdate = envelope.payload, envelope.epoch != state.epoch { return nil }
                expected += 1
            }
            guard expected - 1 == seq else { return nil }
            return (base, history)
        }
    }

    /// The envelopes to relay, in order, to go from (`seq`, `epoch`) to the snapshot.
    ///
    /// - Same epoch and already at (or past) the snapshot's seq: nothing.
    /// - Same epoch, and the history reaches back to the next seq: the missed envelopes only.
    /// - Otherwise, with an unbroken base + history: the base, then the whole
    ///   history, so the relay's log fills and viewers that fail over from
    ///   another relay can resume here.
    /// - Otherwise: the state alone.
    static func plan(seq: Int64, epoch: String, snapshot: Snapshot) -> [Envelope] {
        if snapshot.epoch == epoch, snapshot.seq <= seq { return [] }
        guard let chain = snapshot.chain else { return [snapshot.state] }
        if snapshot.epoch == epoch, let baseSeq = chain.base.seq, baseSeq <= seq {
            return chain.history.filter { ($0.seq ?? 0) > seq }
        }
        return [chain.base] + chain.history
    }

    /// What to do with one message from the channel.
    enum Step: Equatable {
        /// The next envelope: relay it.
        case relay
        /// Already served (an older or the same seq of this epoch): ignore it.
        case ignore
        /// Seqs are missing, or another epoch began: read Redis and resync.
        case resync
    }

    static func step(for envelope: Envelope, seq: Int64, epoch: String) -> Step {
        guard let incoming = envelope.seq else { return .ignore }
        if let other = envelope.epoch, other != epoch { return .resync }
        if incoming <= seq { return .ignore }
        if incoming == seq + 1 { return .relay }
        return .resync
    }
}
