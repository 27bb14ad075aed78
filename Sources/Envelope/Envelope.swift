/// One host → viewer message (SPEC §2): a compact JSON object sent as one
/// WebSocket text frame.
///
/// ```json
/// {"type":"session_update","seq":41,"payload":{"name":"…","data":{},"config":{},"metadata":{}}}
/// {"type":"config_update","seq":42,"payload":{"speed":1.5,"mode":"wave"}}
/// ```
///
/// Encode once per message with ``encoded()`` and send the same bytes to every
/// viewer. Decoding is lenient where SPEC §2 asks for it and strict elsewhere:
///
/// - Members other than `type`, `seq`, `epoch` and `payload` are ignored, in any order.
/// - `seq` and `epoch` are optional; a `null` value counts as absent. `seq` must be
///   an integer (an integral number such as `41.0` is accepted), `epoch` a string.
/// - A `type` other than `session_update`/`config_update` is
///   ``EnvelopeError/Kind/unknownType(_:)``, which viewers ignore without complaint.
/// - `session_update` needs a session object (see ``Session/init(json:)``),
///   `config_update` an object of changed config keys.
public struct Envelope: Sendable, Equatable {
    /// What the message carries.
    public enum Payload: Sendable, Equatable {
        /// The full state; the viewer replaces everything it holds.
        case sessionUpdate(Session)
        /// Only the changed config keys; the viewer merges them.
        case configUpdate(JSONObject)

        /// Equal when the cases match and their contents are JSON-equal (key order ignored).
        public static func == (lhs: Payload, rhs: Payload) -> Bool {
            switch (lhs, rhs) {
            case let (.sessionUpdate(a), .sessionUpdate(b)): a == b
            case let (.configUpdate(a), .configUpdate(b)): JSONValue.object(a) == .object(b)
            default: false
            }
        }
    }

    /// The `type` of a full-state message.
    public static let sessionUpdateType = "session_update"
    /// The `type` of a config-only message.
    public static let configUpdateType = "config_update"

    /// The message content.
    public var payload: Payload
    /// Strictly increasing per host run; nil when the sender did not set one.
    public var seq: Int64?
    /// Identifies the host run that numbered `seq`; encoded only when non-nil.
    public var epoch: String?

    /// Creates an envelope.
    public init(_ payload: Payload, seq: Int64? = nil, epoch: String? = nil) {
        self.payload = payload
        self.seq = seq
        self.epoch = epoch
    }

    /// The wire `type`: "session_update" or "config_update".
    public var type: String {
        switch payload {
        case .sessionUpdate: Self.sessionUpdateType
        case .configUpdate: Self.configUpdateType
        }
    }

    // MARK: Encoding

    /// The compact UTF-8 JSON of this message, members in the order `type`,
    /// `seq` (if set), `epoch` (if set), `payload`.
    public func encoded() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(128)
        encode(into: &buffer)
        return buffer
    }

    /// Appends the compact encoding (see ``encoded()``) to `buffer`.
    public func encode(into buffer: inout [UInt8]) {
        switch payload {
        case .sessionUpdate: JSONWriter.appendASCII("{\"type\":\"session_update\"", to: &buffer)
        case .configUpdate: JSONWriter.appendASCII("{\"type\":\"config_update\"", to: &buffer)
        }
        if let seq {
            JSONWriter.appendASCII(",\"seq\":", to: &buffer)
            JSONWriter.append(seq, to: &buffer)
        }
        if let epoch {
            JSONWriter.appendASCII(",\"epoch\":", to: &buffer)
            JSONWriter.append(epoch, to: &buffer)
        }
        JSONWriter.appendASCII(",\"payload\":", to: &buffer)
        switch payload {
        case let .sessionUpdate(session): session.encode(into: &buffer)
        case let .configUpdate(config): JSONWriter.append(config, to: &buffer)
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// The message as a `JSONValue` (same members and order as ``encoded()``).
    public var json: JSONValue {
        var members: JSONObject = ["type": .string(type)]
        if let seq { members["seq"] = .int(seq) }
        if let epoch { members["epoch"] = .string(epoch) }
        switch payload {
        case let .sessionUpdate(session): members["payload"] = session.json
        case let .configUpdate(config): members["payload"] = .object(config)
        }
        return .object(members)
    }

    // MARK: Decoding

    /// Decodes a message from the bytes of one text frame.
    ///
    /// - Throws: ``EnvelopeError``; `.notJSON` wraps the ``JSONError``.
    public init(decoding bytes: some Collection<UInt8>) throws(EnvelopeError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw EnvelopeError(.notJSON(error))
        }
        try self.init(json: value)
    }

    /// Decodes a message that is already parsed.
    ///
    /// Checks run in this order: object, `type` present, a string, known,
    /// `seq`, `epoch`, `payload` present, payload shape.
    public init(json: JSONValue) throws(EnvelopeError) {
        guard case let .object(members) = json else { throw EnvelopeError(.notAnObject) }
        guard let typeValue = members["type"] else { throw EnvelopeError(.missingType) }
        guard case let .string(type) = typeValue else { throw EnvelopeError(.typeNotAString) }
        guard type == Self.sessionUpdateType || type == Self.configUpdateType else {
            throw EnvelopeError(.unknownType(type))
        }

        var seq: Int64?
        switch members["seq"] {
        case nil, .null?: seq = nil
        case let value?:
            guard let exact = value.int64Value else { throw EnvelopeError(.invalidSeq) }
            seq = exact
        }

        var epoch: String?
        switch members["epoch"] {
        case nil, .null?: epoch = nil
        case let .string(text)?: epoch = text
        case _?: throw EnvelopeError(.invalidEpoch)
        }

        guard let payloadValue = members["payload"] else { throw EnvelopeError(.missingPayload) }
        guard case let .object(payloadMembers) = payloadValue else {
            throw EnvelopeError(.wrongPayloadShape(
                "the payload of \(type) must be an object, not \(withArticle(payloadValue.typeName))"
            ))
        }
        if type == Self.sessionUpdateType {
            let session: Session
            do {
                session = try Session(json: payloadValue)
            } catch {
                throw EnvelopeError(.wrongPayloadShape(error.reason))
            }
            self.init(.sessionUpdate(session), seq: seq, epoch: epoch)
        } else {
            self.init(.configUpdate(payloadMembers), seq: seq, epoch: epoch)
        }
    }
}
