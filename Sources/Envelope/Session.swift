public import OrderedCollections

/// The state a host owns and every viewer mirrors (SPEC §2).
///
/// Equality is JSON equality of the four members: `1 == 1.0`, and the key
/// order of `config`, `metadata` and objects in `data` does not matter.
public struct Session: Sendable, Equatable {
    /// Human-readable session name.
    public var name: String
    /// Structural state: any JSON.
    public var data: JSONValue
    /// Parameters that change often (sliders, toggles); sent alone in `config_update`.
    public var config: JSONObject
    /// Descriptive, structural metadata.
    public var metadata: JSONObject

    /// Creates a session; `data`, `config` and `metadata` default to empty objects.
    public init(name: String, data: JSONValue = .object([:]), config: JSONObject = [:], metadata: JSONObject = [:]) {
        self.name = name
        self.data = data
        self.config = config
        self.metadata = metadata
    }

    /// JSON equality of all four members (see the type's documentation).
    public static func == (lhs: Session, rhs: Session) -> Bool {
        lhs.name == rhs.name
            && lhs.data == rhs.data
            && JSONValue.object(lhs.config) == .object(rhs.config)
            && JSONValue.object(lhs.metadata) == .object(rhs.metadata)
    }
}
