public import Envelope

/// The `--stdin` line protocol of SPEC §3, as a pure function.
///
/// - `{"session":{…}}` replaces the whole state;
/// - an object with any of `name`, `data`, `config`, `metadata` patches it:
///   `config` is merged key by key (a `null` value removes the key), the
///   others are replaced.
public enum SessionInput {
    /// Applies one parsed line to `session`.
    ///
    /// - Throws: ``SessionInputError`` naming what is wrong; `session` is then unchanged.
    public static func apply(_ line: JSONValue, to session: inout Session) throws(SessionInputError) {
        guard case .object(let object) = line else {
            throw SessionInputError("expected a JSON object like {\"config\":{\"speed\":2}}, got \(line.typeName)")
        }
        if let whole = object["session"] {
            guard object.count == 1 else {
                throw SessionInputError("\"session\" replaces the whole state and cannot be combined with other members")
            }
            do {
                session = try Session(json: whole)
            } catch {
                throw SessionInputError("\"session\" is not a valid session: \(error)")
            }
            return
        }
        let known: Set<String> = ["name", "data", "config", "metadata"]
        let unknown = object.keys.filter { !known.contains($0) }
        guard unknown.isEmpty else {
            throw SessionInputError("unknown member \"\(unknown[0])\"; use name, data, config, metadata or session")
        }
        guard !object.isEmpty else {
            throw SessionInputError("empty object; give at least one of name, data, config, metadata or session")
        }
        var next = session
        if let name = object["name"] {
            guard case .string(let text) = name else { throw SessionInputError("\"name\" must be a string, got \(name.typeName)") }
            next.name = text
        }
        if let data = object["data"] { next.data = data }
        if let config = object["config"] {
            guard case .object(let changes) = config else { throw SessionInputError("\"config\" must be an object, got \(config.typeName)") }
            for (key, value) in changes {
                if value == .null { next.config.removeValue(forKey: key) } else { next.config[key] = value }
            }
        }
        if let metadata = object["metadata"] {
            guard case .object(let fields) = metadata else { throw SessionInputError("\"metadata\" must be an object, got \(metadata.typeName)") }
            next.metadata = fields
        }
        session = next
    }
}

/// Why a `--stdin` line was skipped: one sentence.
public struct SessionInputError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What is wrong with the line.
    public let description: String
    init(_ description: String) { self.description = description }
}
