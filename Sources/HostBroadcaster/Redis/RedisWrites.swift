import Envelope

/// The commands that bring Redis in line with a ``PublishedHistory``, as
/// one `MULTI`…`EXEC` transaction each, so that a reader (a relay's
/// `MULTI GET GET LRANGE EXEC`) sees the keys before or after a batch, never
/// in between, and a subscriber that receives a message and then reads the
/// state finds at least that message's state.
///
/// Pure: tested without Redis.
enum RedisWrites {
    typealias Command = [[UInt8]]

    /// Rewrites every key and announces the state (`PUBLISH` of a
    /// `session_update` at the current seq): after a (re)connect, when Redis
    /// may have lost or missed anything.
    static func fullRewrite(_ history: PublishedHistory, channel: RedisChannel) -> [Command] {
        var commands: [Command] = [["MULTI"].bytes, ["DEL", channel.historyKey].bytes]
        if !history.entries.isEmpty {
            commands.append(["RPUSH", channel.historyKey].bytes + history.entries.map(\.bytes))
        }
        commands.append(["SET", channel.baseKey].bytes + [history.baseEnvelope.encoded()])
        let state = history.stateEnvelope.encoded()
        commands.append(["SET", channel.stateKey].bytes + [state])
        commands.append(["PUBLISH", channel.pubsub].bytes + [state])
        commands.append(["EXEC"].bytes)
        return commands
    }

    /// Appends what came after `syncedSeq` (and moves the base if it moved
    /// since `syncedBaseSeq`); nil when the history no longer reaches back,
    /// so only a full rewrite can help.
    static func incremental(_ history: PublishedHistory, channel: RedisChannel, syncedSeq: Int64, syncedBaseSeq: Int64) -> [Command]? {
        guard let fresh = history.entries(after: syncedSeq) else { return nil }
        guard !fresh.isEmpty else { return [] }
        var commands: [Command] = [["MULTI"].bytes]
        commands.append(["RPUSH", channel.historyKey].bytes + fresh.map(\.bytes))
        if history.baseSeq != syncedBaseSeq {
            commands.append(["LTRIM", channel.historyKey, String(-history.entries.count), "-1"].bytes)
            commands.append(["SET", channel.baseKey].bytes + [history.baseEnvelope.encoded()])
        }
        commands.append(["SET", channel.stateKey].bytes + [history.stateEnvelope.encoded()])
        for entry in fresh {
            commands.append(["PUBLISH", channel.pubsub].bytes + [entry.bytes])
        }
        commands.append(["EXEC"].bytes)
        return commands
    }
}

extension Array where Element == String {
    /// Each string's UTF-8 bytes.
    var bytes: [[UInt8]] { map { [UInt8]($0.utf8) } }
}
