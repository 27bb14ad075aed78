extension Session {
    /// Reads a session from its JSON form (SPEC §2).
    ///
    /// The value must be an object with `name` (a string, required), `data`
    /// (any JSON; `{}` when absent), `config` and `metadata` (objects; `{}` when
    /// absent). Other members are ignored, so later versions may add some.
    /// `null` is not accepted for `config` or `metadata`.
    ///
    /// - Throws: ``EnvelopeError`` of kind `sessionNotAnObject`, `missingName`
    ///   or `wrongMemberType`.
    public init(json: JSONValue) throws(EnvelopeError) {
        guard case let .object(members) = json else {
            throw EnvelopeError(.sessionNotAnObject(got: json.typeName))
        }
        guard let nameValue = members["name"] else { throw EnvelopeError(.missingName) }
        guard case let .string(name) = nameValue else {
            throw EnvelopeError(.wrongMemberType(member: "name", expected: "string", got: nameValue.typeName))
        }
        self.init(
            name: name,
            data: members["data"] ?? .object([:]),
            config: try Self.object(members, "config"),
            metadata: try Self.object(members, "metadata")
        )
    }

    private static func object(_ members: JSONObject, _ member: String) throws(EnvelopeError) -> JSONObject {
        guard let value = members[member] else { return [:] }
        guard case let .object(object) = value else {
            throw EnvelopeError(.wrongMemberType(member: member, expected: "object", got: value.typeName))
        }
        return object
    }

    /// The JSON form: an object with members `name`, `data`, `config`, `metadata`, in that order.
    public var json: JSONValue {
        .object(["name": .string(name), "data": data, "config": .object(config), "metadata": .object(metadata)])
    }

    /// Appends the compact JSON form (same member order as ``json``) without building a `JSONValue`.
    public func encode(into buffer: inout [UInt8]) {
        JSONWriter.appendASCII("{\"name\":", to: &buffer)
        JSONWriter.append(name, to: &buffer)
        JSONWriter.appendASCII(",\"data\":", to: &buffer)
        data.encode(into: &buffer)
        JSONWriter.appendASCII(",\"config\":", to: &buffer)
        JSONWriter.append(config, to: &buffer)
        JSONWriter.appendASCII(",\"metadata\":", to: &buffer)
        JSONWriter.append(metadata, to: &buffer)
        buffer.append(UInt8(ascii: "}"))
    }

    /// The compact JSON form as bytes.
    public func encoded() -> [UInt8] {
        var buffer: [UInt8] = []
        encode(into: &buffer)
        return buffer
    }
}
