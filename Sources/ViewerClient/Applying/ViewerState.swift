public import Envelope

/// The viewer's copy of the host's state and the rules for applying host
/// messages to it (SPEC §4), without any I/O.
///
/// - `session_update` replaces the state.
/// - `config_update` merges only the keys the whitelist accepts with the
///   expected JSON type. The whitelist is the explicit schema when one was
///   given, otherwise it is derived from the config of the last full state
///   (every number typed `number`; see `FieldSchema.derived(from:)`).
///   Keys merged by `config_update` do not widen a derived whitelist: only
///   the next `session_update` does.
/// - A `config_update` before any full state is ignored (there is nothing
///   to merge into, and no derived whitelist).
/// - ``lastSeq`` and ``lastEpoch`` follow every envelope applied after the
///   first full state, including a `config_update` of which nothing was
///   accepted (its position has been seen), so a resume never asks for it again.
/// - Binary messages, malformed JSON, invalid envelopes, unknown `type`s and
///   rejected keys are dropped and counted in ``counters``.
///
/// `ViewerClient` uses it for messages from libwebsockets; an app with its
/// own WebSocket can feed it directly:
///
/// ```swift
/// var state = ViewerState()
/// if case let .applied(change, _) = state.apply(.text(bytes)) {
///     print(change.changedKeys, state.session!.config)
/// }
/// ```
public struct ViewerState: Sendable {
    /// The result of applying one message.
    public enum Outcome: Sendable, Equatable {
        /// The state changed; `rejected` lists config keys the whitelist dropped.
        case applied(AppliedChange, rejected: [FieldSchema.Rejection])
        /// Nothing changed, for this reason.
        case dropped(DropReason)
    }

    /// Why a message changed nothing.
    public enum DropReason: Sendable, Equatable, CustomStringConvertible {
        /// A binary message (StateCast is text only).
        case binaryMessage(byteCount: Int)
        /// A message over the size limit.
        case oversized(byteCount: Int)
        /// Not JSON, or not a valid envelope.
        case malformed(EnvelopeError)
        /// An envelope `type` this viewer does not know.
        case unknownType(String)
        /// A `config_update` before any `session_update`.
        case configUpdateBeforeState
        /// A `config_update` of which the whitelist accepted no key.
        case nothingAccepted(rejected: [FieldSchema.Rejection])

        /// One phrase for a debug log line.
        public var description: String {
            switch self {
            case let .binaryMessage(count): "binary message (\(count) bytes) dropped"
            case let .oversized(count): "message of \(count) bytes over the size limit dropped"
            case let .malformed(error): "\(error.description); dropped"
            case let .unknownType(type): "unknown message type \"\(type)\" ignored"
            case .configUpdateBeforeState: "config_update before any session_update ignored"
            case let .nothingAccepted(rejected):
                rejected.isEmpty
                    ? "empty config_update ignored"
                    : rejected.map(\.description).joined(separator: "; ")
            }
        }
    }

    /// The explicit whitelist, if one was given.
    public let explicitSchema: FieldSchema?
    /// The current state; nil until the first `session_update`.
    public private(set) var session: Session?
    /// What was received and dropped so far.
    public private(set) var counters = ViewerCounters()
    /// The `seq` of the last envelope applied with one, or seen with one: a
    /// `config_update` of which the whitelist accepted nothing still moves it.
    public private(set) var lastSeq: Int64?
    /// The `epoch` (host run id) of what the viewer holds: from the last
    /// `session_update`, or a later `config_update` that names one; nil if none did.
    public private(set) var lastEpoch: String?
    private var derivedSchema: FieldSchema?

    /// A state with no session yet. `schema` is the explicit whitelist for
    /// `config_update`; nil derives it from each full state's config.
    public init(schema: FieldSchema? = nil) {
        explicitSchema = schema
    }

    /// The whitelist in force: the explicit one, else the one derived from
    /// the last full state (nil before any).
    public var activeSchema: FieldSchema? { explicitSchema ?? derivedSchema }

    /// Applies one message and says what happened.
    public mutating func apply(_ frame: IncomingFrame) -> Outcome {
        counters.messagesReceived += 1
        switch frame {
        case let .binary(count):
            counters.binaryMessagesDropped += 1
            return .dropped(.binaryMessage(byteCount: count))
        case let .oversized(count):
            counters.oversizedMessagesDropped += 1
            return .dropped(.oversized(byteCount: count))
        case let .text(bytes):
            let envelope: Envelope
            do {
                envelope = try Envelope(decoding: bytes)
            } catch {
                if case let .unknownType(type) = error.kind {
                    counters.unknownTypesDropped += 1
                    return .dropped(.unknownType(type))
                }
                counters.malformedMessagesDropped += 1
                return .dropped(.malformed(error))
            }
            return apply(envelope)
        }
    }

    /// Applies an envelope that is already decoded (counts it as received only through ``apply(_:)-(IncomingFrame)``).
    public mutating func apply(_ envelope: Envelope) -> Outcome {
        switch envelope.payload {
        case let .sessionUpdate(new):
            let changed = Self.changedMembers(from: session, to: new)
            session = new
            derivedSchema = FieldSchema.derived(from: new.config)
            counters.sessionUpdatesApplied += 1
            lastSeq = envelope.seq
            lastEpoch = envelope.epoch
            return .applied(
                AppliedChange(seq: envelope.seq, type: envelope.type, changedKeys: changed, session: new),
                rejected: []
            )

        case let .configUpdate(update):
            guard var current = session, let schema = activeSchema else {
                counters.configUpdatesBeforeState += 1
                return .dropped(.configUpdateBeforeState)
            }
            let result = schema.filter(update)
            counters.rejectedFields += result.rejected.count
            // The viewer has seen this position even if it took nothing from it:
            // resuming from an older seq would only bring the same envelope again.
            if let seq = envelope.seq { lastSeq = seq }
            if let epoch = envelope.epoch { lastEpoch = epoch }
            guard !result.accepted.isEmpty else {
                counters.configUpdatesRejected += 1
                return .dropped(.nothingAccepted(rejected: result.rejected))
            }
            for (key, value) in result.accepted {
                current.config[key] = value
            }
            session = current
            counters.configUpdatesApplied += 1
            return .applied(
                AppliedChange(seq: envelope.seq, type: envelope.type, changedKeys: Array(result.accepted.keys),
                              session: current),
                rejected: result.rejected
            )
        }
    }

    /// The query that asks a StateCast host to resume from this state after a
    /// reconnect (`since=SEQ&epoch=EPOCH`, docs/PROTOCOL.md §4): the host then
    /// sends only what changed since, or nothing if nothing did. Nil until a
    /// `session_update` with an `epoch` and a `seq` has been applied; other
    /// servers ignore the query and send the full state.
    public var resumeQuery: String? {
        guard session != nil, let lastSeq, let lastEpoch, !lastEpoch.isEmpty else { return nil }
        return "since=\(lastSeq)&epoch=\(Self.percentEncoded(lastEpoch))"
    }

    private static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            let scalar = Unicode.Scalar(byte)
            if scalar.properties.isAlphabetic && byte < 0x80 || (0x30...0x39).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "~") {
                result.unicodeScalars.append(scalar)
            } else {
                let hex = Array("0123456789ABCDEF".utf8)
                result += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]], as: UTF8.self)
            }
        }
        return result
    }

    private static func changedMembers(from old: Session?, to new: Session) -> [String] {
        guard let old else { return ["name", "data", "config", "metadata"] }
        var changed: [String] = []
        if old.name != new.name { changed.append("name") }
        if old.data != new.data { changed.append("data") }
        if JSONValue.object(old.config) != .object(new.config) { changed.append("config") }
        if JSONValue.object(old.metadata) != .object(new.metadata) { changed.append("metadata") }
        return changed
    }
}
