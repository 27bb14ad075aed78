import Envelope

/// Reads a channel's state, base and history from Redis in one `MULTI`…`EXEC`.
enum RedisSnapshotReader {
    /// The snapshot, or nil when no host has written the channel's state yet.
    static func read(_ connection: RedisConnection, channel: RedisChannel) throws(RedisError) -> RelaySync.Snapshot? {
        let replies = try connection.pipeline([
            ["MULTI"].bytes,
            ["GET", channel.stateKey].bytes,
            ["GET", channel.baseKey].bytes,
            ["LRANGE", channel.historyKey, "0", "-1"].bytes,
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
        guard case .sessionUpdate = state.payload, state.seq != nil, state.epoch != nil else {
            throw .malformedState(connection.url, key: channel.stateKey, "not a session_update with seq and epoch")
        }
        // A damaged base or history only costs the preload: the state alone still serves.
        let base = results[1].bytes.flatMap { try? Envelope(decoding: $0) }
        var history: [Envelope] = []
        if case .array(let items) = results[2] {
            for item in items {
                guard let bytes = item.bytes, let envelope = try? Envelope(decoding: bytes) else {
                    history = []
                    break
                }
                history.append(envelope)
            }
        }
        return RelaySync.Snapshot(state: state, base: base, history: history)
    }

    private static func decode(_ bytes: [UInt8], key: String, url: RedisURL) throws(RedisError) -> Envelope {
        do {
            return try Envelope(decoding: bytes)
        } catch {
            throw .malformedState(url, key: key, error.description)
        }
    }
}
