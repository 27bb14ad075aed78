import Envelope

/// How a reconnecting viewer catches up (`?since=SEQ&epoch=E`, SSE `Last-Event-ID`).
///
/// Pure decisions over the shared ``MessageLog``, tested without sockets.
enum Resume {
    /// Where a newcomer starts.
    enum Start: Equatable {
        /// Send the whole state.
        case fullState
        /// It holds the state as of this seq; send what came after.
        case after(Int64)
    }

    /// Decided when the handshake completes.
    ///
    /// - A different epoch means another host run (or another session): full state.
    /// - A seq newer than the host's is from another run: full state.
    /// - A seq the log no longer reaches back to: full state.
    static func start(since: Int64?, epoch: String?, currentEpoch: String, latestSeq: Int64, log: MessageLog) -> Start {
        guard let since else { return .fullState }
        if let epoch, epoch != currentEpoch { return .fullState }
        if since > latestSeq { return .fullState }
        if since == latestSeq { return .after(since) }
        guard let first = log.firstSeq, since + 1 >= first else { return .fullState }
        return .after(since)
    }

    /// What to send on the first write after `.after(seq)`.
    enum Catch: Equatable {
        /// Nothing was missed.
        case upToDate
        /// Only config changes were missed: one merged `config_update` at `seq`.
        case configs(JSONObject, seq: Int64)
        /// A structural change was missed, or the log moved on: the full state.
        case fullState
    }

    /// Coalesces the log from `nextSeq` on.
    static func catchUp(from nextSeq: Int64, log: MessageLog) -> Catch {
        switch log.position(of: nextSeq) {
        case .upToDate: return .upToDate
        case .fellBehind: return .fullState
        case .pending: break
        }
        guard let last = log.lastSeq else { return .upToDate }
        var merged: JSONObject = [:]
        var seq = nextSeq
        while seq <= last {
            guard let message = log.message(seq: seq), !message.isFullState,
                  let envelope = try? Envelope(decoding: message.bytes),
                  case .configUpdate(let changes) = envelope.payload
            else { return .fullState }
            for (key, value) in changes { merged[key] = value }
            seq += 1
        }
        return .configs(merged, seq: last)
    }
}
