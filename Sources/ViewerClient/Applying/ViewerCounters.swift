/// What a viewer received and what it did with it. Readable by apps at any
/// time (`ViewerClient.counters`); nothing here is ever fatal.
public struct ViewerCounters: Sendable, Hashable {
    /// Every complete message received, applied or not.
    public var messagesReceived = 0
    /// `session_update` envelopes applied (full state replaced).
    public var sessionUpdatesApplied = 0
    /// `config_update` envelopes of which at least one key was applied.
    public var configUpdatesApplied = 0
    /// Binary messages dropped (the protocol is text only).
    public var binaryMessagesDropped = 0
    /// Messages that were not JSON or not a valid envelope, dropped.
    public var malformedMessagesDropped = 0
    /// Envelopes of a `type` this viewer does not know, ignored (SPEC §2).
    public var unknownTypesDropped = 0
    /// `config_update` envelopes that arrived before any full state, ignored.
    public var configUpdatesBeforeState = 0
    /// `config_update` envelopes of which the whitelist accepted nothing.
    public var configUpdatesRejected = 0
    /// Config keys dropped by the whitelist: unknown key or wrong JSON type.
    public var rejectedFields = 0
    /// Messages larger than the configured maximum, dropped.
    public var oversizedMessagesDropped = 0

    /// All counters zero.
    public init() {}

    /// Messages dropped whole, for any reason.
    public var messagesDropped: Int {
        binaryMessagesDropped + malformedMessagesDropped + unknownTypesDropped + configUpdatesBeforeState
            + configUpdatesRejected + oversizedMessagesDropped
    }
}
