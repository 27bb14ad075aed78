import Envelope

/// Reads a channel's state, base and history from Redis in one `MULTI`…`EXEC`.
///
/// Everything read is untrusted: the reply is bounded (``RedisConnection/maxReplyBytes``,
/// at most ``maxHistoryEntries`` history entries, the newest), and every seq
/// must lie in ``HostBroadcaster/acceptableSeqs``.
enum RedisSnapshotReader {
    /// Most history entries read: the newest ones (a publisher keeps at most its
    /// backlog count plus an eighth; a longer list was not written by StateCast).
    static let maxHistoryEntries = 8192

    /// The snapshot, or nil when no host has written the channel's state yet.
    static func read(_ connection: RedisConnection, channel: RedisChannel) throws(RedisError) -> RelaySync.Snapshot? {
        let replies = try connection.pipeline([
            ["MULTI"].bytes,
            ["GET", channel.stateKey].bytes,
            ["GET", channel.baseKey].bytes,
            ["LRANGE", channel.historyKey, "-\(maxHistoryEntries)", "-1"].bytes,
            ["EXEC"].bytes,
        ])
        guard case .array(let results)? = replies.last, results.count == 3 else {
            throw .refused(connection.url, "the snapshot transaction", "EXEC did not run")
        }
        guard let stateBytes = results[0].bytes else {
            if case .error(let message) = results[0] { throw .refused(connection.url, "GET \(channel.stateKey)", message) }
            return nil
        }
        let state = try decode(stateBytes, key: channel.stateKey, url: connection.url)
        guard case .sessionUpdate = state.payload, let seq = state.seq, state.epoch != nil else {
            throw .malformedState(connection.url, key: channel.stateKey, "not a session_update with seq and epoch")
        }
        guard HostBroadcaster.acceptableSeqs.contains(seq) else {
            throw .malformedState(connection.url, key: channel.stateKey, "its seq \(seq) is outside 0…\(HostBroadcaster.acceptableSeqs.upperBound)")
        }
        // A damaged base or history only costs the preload: the state alone still serves.
        let base = results[1].bytes.flatMap { try? Envelope(decoding: $0) }.flatMap(hasAcceptableSeq)
        var history: [Envelope] = []
        if case .array(let items) = results[2] {
            for item in items {
                guard let bytes = item.bytes, let envelope = (try? Envelope(decoding: bytes)).flatMap(hasAcceptableSeq) else {
                    history = []
                    break
                }
                history.append(envelope)
            }
        }
        return RelaySync.Snapshot(state: state, base: base, history: history)
    }

    /// The envelope if its seq lies in ``HostBroadcaster/acceptableSeqs``.
    private static func hasAcceptableSeq(_ envelope: Envelope) -> Envelope? {
        guard let seq = envelope.seq, HostBroadcaster.acceptableSeqs.contains(seq) else { return nil }
        return envelope
    }

    private static func decode(_ bytes: [UInt8], key: String, url: RedisURL) throws(RedisError) -> Envelope {
        do {
            return try Envelope(decoding: bytes)
        } catch {
            throw .malformedState(url, key: key, error.description)
        }
    }
}
