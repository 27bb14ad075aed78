// libFuzzer target `envelope`: the JSON decoder and the envelope decoder.
// Build and run with scripts/fuzz; what it checks is listed in Fuzz/README.md.
import Envelope

@_cdecl("LLVMFuzzerTestOneInput")
public func envelopeFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let parsed = checkJSON(bytes)
    checkEnvelope(bytes, parsed: parsed)
    if case let .success(value) = parsed { checkSchemaFile(value) }
    return 0
}

/// `JSONValue(parsing:)`: every entry point agrees, errors are well formed,
/// and whatever decodes re-encodes (compact and pretty) to the same value.
private func checkJSON(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, JSONError> {
    let parsed = parseJSON(bytes)

    // The copying path for non-contiguous collections gives the same outcome.
    let copied = parseJSON(bytes.lazy.map { $0 })
    require(sameOutcome(parsed, copied), "contiguous \(show(parsed)) vs copied \(show(copied))")

    // Valid UTF-8 parsed as a String gives the same outcome as its bytes.
    if let text = String(validating: bytes, as: UTF8.self) {
        let fromText = parseJSON(text: text)
        require(sameOutcome(parsed, fromText), "bytes \(show(parsed)) vs String \(show(fromText))")
    } else {
        // Invalid UTF-8 can never decode (the repaired text, as `readLine` gives it, must not crash).
        if case .success = parsed {
            require(false, "input with invalid UTF-8 decoded: \(show(parsed))")
        }
        if case let .failure(error) = parseJSON(text: String(decoding: bytes, as: UTF8.self)) {
            require(!error.description.isEmpty, "empty description")
        }
    }

    switch parsed {
    case let .failure(error):
        checkErrorIsWellFormed(error, inputCount: bytes.count)
    case let .success(value):
        require(value == value, "== is not reflexive for \(value.jsonText.prefix(200))")
        let compact = value.encoded()
        switch parseJSON(compact) {
        case let .success(back):
            require(back == value, "compact round trip changed the value: \(value.jsonText.prefix(200))")
            require(back.encoded() == compact, "compact encoding is not stable: \(value.jsonText.prefix(200))")
        case let .failure(error):
            require(false, "own compact encoding does not decode: \(error) in \(value.jsonText.prefix(200))")
        }
        let pretty = value.prettyText()
        switch parseJSON(text: pretty) {
        case let .success(back):
            require(identical(back, value), "pretty round trip changed the value: \(value.jsonText.prefix(200))")
        case let .failure(error):
            require(false, "own pretty encoding does not decode: \(error) in \(pretty.prefix(200))")
        }
    }
    return parsed
}

/// `Envelope(decoding:)`: agrees with `JSONValue(parsing:)` + `Envelope(json:)`,
/// and every envelope that decodes re-encodes to bytes that decode to the same envelope.
private func checkEnvelope(_ bytes: UnsafeBufferPointer<UInt8>, parsed: Result<JSONValue, JSONError>) {
    let decoded = Result { () throws(EnvelopeError) -> Envelope in try Envelope(decoding: bytes) }
    let twoStep: Result<Envelope, EnvelopeError> = switch parsed {
    case let .success(value): Result { () throws(EnvelopeError) -> Envelope in try Envelope(json: value) }
    case let .failure(error): .failure(EnvelopeError(.notJSON(error)))
    }

    switch (decoded, twoStep) {
    case let (.failure(error), .failure(other)):
        require(error == other, "Envelope(decoding:) threw \(error) but parse + Envelope(json:) threw \(other)")
        require(!error.description.isEmpty, "empty envelope error description")
    case let (.success(envelope), .success(other)):
        require(envelope.encoded() == other.encoded(), "Envelope(decoding:) and Envelope(json:) disagree")
        checkRoundTrip(envelope, input: parsed)
        checkViewerWhitelist(envelope)
    default:
        require(false, "Envelope(decoding:) gave \(decoded), parse + Envelope(json:) gave \(twoStep)")
    }
}

private func checkRoundTrip(_ envelope: Envelope, input: Result<JSONValue, JSONError>) {
    let encoded = envelope.encoded()
    let text = String(decoding: encoded.prefix(300), as: UTF8.self)

    // `json` has the same members in the same order as `encoded()`.
    require(envelope.json.encoded() == encoded, "json and encoded() disagree for \(text)")

    switch Result(catching: { () throws(EnvelopeError) -> Envelope in try Envelope(decoding: encoded) }) {
    case let .success(again):
        require(again == envelope, "re-decoded envelope differs: \(text)")
        require(again.encoded() == encoded, "encoding is not stable: \(text)")
    case let .failure(error):
        require(false, "own encoding does not decode: \(error) for \(text)")
    }
    switch Result(catching: { () throws(EnvelopeError) -> Envelope in try Envelope(json: envelope.json) }) {
    case let .success(again):
        require(again.encoded() == encoded, "Envelope(json: json) differs: \(text)")
    case let .failure(error):
        require(false, "own json does not decode: \(error) for \(text)")
    }

    // What was decoded is what the input said.
    guard case let .success(value) = input else { return require(false, "decoded from bad JSON") }
    require(value["type"] == .string(envelope.type), "type changed: \(text)")
    require(value["seq"]?.int64Value == envelope.seq, "seq changed: \(text)")
    require(value["epoch"]?.stringValue == envelope.epoch, "epoch changed: \(text)")
    switch envelope.payload {
    case let .configUpdate(config):
        require(identical(value["payload"] ?? .null, .object(config)), "config payload changed: \(text)")
    case let .sessionUpdate(session):
        require(value["payload"]?["name"] == .string(session.name), "session name changed: \(text)")
        require(identical(value["payload"]?["data"] ?? .object([:]), session.data), "session data changed: \(text)")
    }
}

// MARK: - Viewer side (SPEC §4)

/// The config a viewer holds when a `config_update` arrives: one field of each derived type.
private func viewerConfig() -> JSONObject {
    ["speed": 1.5, "mode": "wave", "on": true, "shape": ["r": 1], "points": [1, 2], "later": nil]
}

/// The whitelist a viewer applies: a schema derived from a full state accepts that
/// state's own config, and filtering a `config_update` accounts for every member.
private func checkViewerWhitelist(_ envelope: Envelope) {
    switch envelope.payload {
    case let .sessionUpdate(session):
        let schema = FieldSchema.derived(from: session.config)
        let result = schema.filter(session.config)
        require(result.rejected.isEmpty, "a derived schema rejects its own config: \(result.rejected)")
        require(identical(.object(result.accepted), .object(session.config)), "a derived schema changed its own config")
    case let .configUpdate(update):
        let schema = FieldSchema.derived(from: viewerConfig())
        let result = schema.filter(update)
        require(result.accepted.count + result.rejected.count == update.count, "filter lost or invented members")
        for (key, value) in result.accepted {
            require(schema.accepts(value, forKey: key), "filter accepted \(key) that accepts(_:forKey:) refuses")
            require(update[key].map { identical($0, value) } == true, "filter changed the value of \(key)")
        }
        for rejection in result.rejected {
            require(update[rejection.key].map { !schema.accepts($0, forKey: rejection.key) } == true,
                    "filter rejected \(rejection.key) that accepts(_:forKey:) allows")
            require(!rejection.description.isEmpty, "empty rejection description")
        }
    }
}

/// The input as a `--schema FILE`: it is a schema or a `SchemaError`, never a crash; a schema
/// declares exactly the members it was given.
private func checkSchemaFile(_ value: JSONValue) {
    switch Result(catching: { () throws(SchemaError) -> FieldSchema in try FieldSchema(schemaJSON: value) }) {
    case let .success(schema):
        guard case var .object(members) = value else { return require(false, "a non-object schema was accepted") }
        if members.count == 1, case let .object(wrapped)? = members["fields"] { members = wrapped }
        require(schema.fields.count + schema.untypedFields.count == members.count, "schema lost or invented fields")
        for key in members.keys {
            require(schema.fields[key] != nil || schema.untypedFields.contains(key), "schema lost field \(key)")
        }
    case let .failure(error):
        require(!error.description.isEmpty, "empty SchemaError description")
    }
}
