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

    /// Decided when the handshake completes. A position is the pair (epoch, seq):
    ///
    /// - No seq, or no epoch, or another epoch (another host run or session): full state.
    /// - A seq newer than the host's is not a position of this run: full state.
    /// - A seq the log no longer reaches back to: full state.
    static func start(since: Int64?, epoch: String?, currentEpoch: String, latestSeq: Int64, log: MessageLog) -> Start {
        guard let since, let epoch, epoch == currentEpoch else { return .fullState }
        if since > latestSeq { return .fullState }
        if since == latestSeq { return .after(since) }
        guard let first = log.firstSeq, since + 1 >= first else { return .fullState }
        return .after(since)
    }

    /// The SSE event id of the envelope at (`epoch`, `seq`): `EPOCH:SEQ`, so an id
    /// from another run can never be taken for a position in this one. Line
    /// breaks (which would end the field) are left out of the epoch.
    static func eventID(epoch: String?, seq: Int64) -> String {
        guard let epoch else { return String(seq) }
        return epoch.filter { $0 != "\n" && $0 != "\r" && $0 != "\0" } + ":" + String(seq)
    }

    /// The resume position an SSE client names: `Last-Event-ID` (header, else
    /// `?lastEventId=`) as `EPOCH:SEQ`, or a bare `SEQ` with the epoch from
    /// `?epoch=` (nil when there is none: such a position gets the full state).
    static func ssePosition(lastEventID: String?, epochArgument: String?) -> (since: Int64?, epoch: String?) {
        guard let id = lastEventID?.trimmingSpaces(), !id.isEmpty else { return (nil, epochArgument) }
        guard let colon = id.lastIndex(of: ":") else { return (Int64(id), epochArgument) }
        return (Int64(id[id.index(after: colon)...]), String(id[..<colon]))
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

private extension String {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
