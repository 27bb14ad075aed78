import Envelope

/// The writes that bring Redis in line with a ``PublishedHistory``: one
/// small Lua script run with `EVAL`, so each batch is atomic — a reader (a
/// relay's `MULTI GET GET LRANGE EXEC`) sees the keys before or after it,
/// never in between, and a subscriber that receives a message and then reads
/// the state finds at least that message's state.
///
/// Why a script rather than `MULTI`/`EXEC`: every write is conditional on
/// the *mark* (`statecast:NAME:mark`, "EPOCH:SEQ" of the last write). A
/// publisher whose write timed out (Redis frozen, say) has left that write
/// in the socket; Redis may still run it after the publisher reconnected and
/// wrote something newer. The condition turns such a late write into a
/// no-op instead of a step back: an append applies only if the mark is the
/// one it followed; a full rewrite only if Redis holds no newer seq of the
/// same epoch.
///
/// Pure: tested without Redis.
enum RedisWrites {
    typealias Command = [[UInt8]]

    /// KEYS: state, base, history, mark.
    /// ARGV: mode, expected mark, new mark, epoch, seq, channel, state, base ('' = unchanged), history length after, entries….
    /// Returns 1 when written, 0 when skipped (the condition failed).
    static let script = """
        local mode, expected, mark, epoch, seq = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
        local current = redis.call('GET', KEYS[4])
        if mode == 'append' then
          if current ~= expected then return 0 end
        else
          if current then
            local e, s = string.match(current, '^(.*):(%-?%d+)$')
            if e == epoch and tonumber(s) > seq then return 0 end
          end
          redis.call('DEL', KEYS[3])
        end
        local first, last = 10, #ARGV
        local i = first
        while i <= last do
          local j = math.min(i + 999, last)
          redis.call('RPUSH', KEYS[3], unpack(ARGV, i, j))
          i = j + 1
        end
        if ARGV[8] ~= '' then
          redis.call('SET', KEYS[2], ARGV[8])
          local keep = tonumber(ARGV[9])
          if keep == 0 then redis.call('DEL', KEYS[3]) else redis.call('LTRIM', KEYS[3], -keep, -1) end
        end
        redis.call('SET', KEYS[1], ARGV[7])
        redis.call('SET', KEYS[4], mark)
        if mode == 'append' then
          for k = first, last do redis.call('PUBLISH', ARGV[6], ARGV[k]) end
        else
          redis.call('PUBLISH', ARGV[6], ARGV[7])
        end
        return 1
        """

    /// The mark of a history's newest state.
    static func mark(epoch: String, seq: Int64) -> String { "\(epoch):\(seq)" }

    /// Rewrites every key and announces the state (`PUBLISH` of a
    /// `session_update` at the current seq): after a (re)connect, when Redis
    /// may have lost or missed anything.
    static func fullRewrite(_ history: PublishedHistory, channel: RedisChannel) -> Command {
        command(
            mode: "full", expected: "", history: history, channel: channel,
            base: history.baseEnvelope.encoded(), entries: Array(history.entries.map(\.bytes)))
    }

    /// Appends what came after `syncedSeq` (and moves the base if it moved
    /// since `syncedBaseSeq`), on condition that Redis still holds that
    /// write's mark; nil when the history no longer reaches back (only a
    /// full rewrite can help); empty when there is nothing to write.
    static func incremental(_ history: PublishedHistory, channel: RedisChannel, syncedSeq: Int64, syncedBaseSeq: Int64) -> Command? {
        guard let fresh = history.entries(after: syncedSeq) else { return nil }
        guard !fresh.isEmpty else { return [] }
        return command(
            mode: "append", expected: mark(epoch: history.epoch, seq: syncedSeq), history: history, channel: channel,
            base: history.baseSeq != syncedBaseSeq ? history.baseEnvelope.encoded() : [], entries: fresh.map(\.bytes))
    }

    private static func command(
        mode: String, expected: String, history: PublishedHistory, channel: RedisChannel, base: [UInt8], entries: [[UInt8]]
    ) -> Command {
        var command: Command = ["EVAL", script, "4", channel.stateKey, channel.baseKey, channel.historyKey, channel.markKey].bytes
        command += [
            mode, expected, mark(epoch: history.epoch, seq: history.currentSeq), history.epoch, String(history.currentSeq),
            channel.pubsub,
        ].bytes
        command.append(history.stateEnvelope.encoded())
        command.append(base)
        command.append(Array(String(history.entries.count).utf8))
        command += entries
        return command
    }
}

extension Array where Element == String {
    /// Each string's UTF-8 bytes.
    var bytes: [[UInt8]] { map { [UInt8]($0.utf8) } }
}
