/// The Redis names of one StateCast channel.
///
/// - `statecast:NAME`: the pub/sub channel; each message is one envelope's compact JSON.
/// - `statecast:NAME:state`: the current full state, a `session_update` envelope with seq and epoch.
/// - `statecast:NAME:base`: the full state just before the oldest history entry (a `session_update`).
/// - `statecast:NAME:history`: a list of the recent envelopes, oldest first, for resuming viewers.
/// - `statecast:NAME:mark`: "EPOCH:SEQ" of the publisher's last write (see `RedisWrites`).
///
/// `base` plus `history` rebuild every state of the recent past exactly, so a
/// relay that starts can fill its own resume log without ever showing a
/// state that did not exist.
public struct RedisChannel: Sendable, Hashable, CustomStringConvertible {
    /// The name given with `--channel`.
    public let name: String

    /// Checks `name`: 1 to 200 of letters, digits, `.`, `_`, `-`.
    public init(_ name: String) throws(RedisError) {
        guard !name.isEmpty else { throw .badChannel(name, "is empty") }
        guard name.utf8.count <= 200 else { throw .badChannel(name, "is longer than 200 characters") }
        guard name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) })
        else { throw .badChannel(name, "has characters other than letters, digits and . _ -") }
        self.name = name
    }

    /// The pub/sub channel.
    public var pubsub: String { "statecast:\(name)" }
    /// The key of the current full state.
    public var stateKey: String { "statecast:\(name):state" }
    /// The key of the state before the oldest history entry.
    public var baseKey: String { "statecast:\(name):base" }
    /// The key of the history list.
    public var historyKey: String { "statecast:\(name):history" }
    /// The key of the last write's "EPOCH:SEQ".
    public var markKey: String { "statecast:\(name):mark" }

    public var description: String { pubsub }
}
