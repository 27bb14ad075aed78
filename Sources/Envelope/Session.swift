public import OrderedCollections

/// The state a host owns and every viewer mirrors (SPEC §2).
public struct Session: Sendable, Equatable {
    /// Human-readable session name.
    public var name: String
    /// Structural state: any JSON.
    public var data: JSONValue
    /// Parameters that change often (sliders, toggles); sent alone in `config_update`.
    public var config: JSONObject
    /// Descriptive, structural metadata.
    public var metadata: JSONObject

    public init(name: String, data: JSONValue = .object([:]), config: JSONObject = [:], metadata: JSONObject = [:]) {
        self.name = name
        self.data = data
        self.config = config
        self.metadata = metadata
    }
}
