/// Why bytes are not a StateCast envelope (SPEC §2), or a JSON value is not a session.
///
/// `description` is one sentence naming the cause, suitable for a log line or
/// a CLI error message.
public struct EnvelopeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kind of problem.
    public enum Kind: Equatable, Sendable {
        /// The bytes are not JSON at all.
        case notJSON(JSONError)
        /// The envelope is valid JSON but not an object.
        case notAnObject
        /// The envelope has no `type` member.
        case missingType
        /// The envelope's `type` is not a string.
        case typeNotAString
        /// The envelope's `type` is one this version does not know; viewers ignore such messages.
        case unknownType(String)
        /// The envelope has no `payload` member.
        case missingPayload
        /// The payload does not have the shape its type requires; the text says how.
        case wrongPayloadShape(String)
        /// `seq` is present but not an integer.
        case invalidSeq
        /// `epoch` is present but not a string.
        case invalidEpoch
        /// A session must be a JSON object; the associated value is the JSON type found.
        case sessionNotAnObject(got: String)
        /// A session has no `name` member.
        case missingName
        /// A session member has the wrong JSON type (`name` must be a string,
        /// `config` and `metadata` objects).
        case wrongMemberType(member: String, expected: String, got: String)
    }

    /// What went wrong.
    public var kind: Kind

    /// Creates an error of the given kind.
    public init(_ kind: Kind) {
        self.kind = kind
    }

    /// One sentence naming the cause.
    public var description: String {
        switch kind {
        case let .notJSON(error):
            return "message is not valid JSON: \(error.description)"
        case .notAnObject:
            return "message is not a JSON object; a StateCast envelope looks like {\"type\":\"session_update\",\"payload\":{…}}"
        case .missingType:
            return "message has no \"type\" member; a StateCast envelope needs \"type\" and \"payload\""
        case .typeNotAString:
            return "message \"type\" is not a string; use \"session_update\" or \"config_update\""
        case let .unknownType(type):
            return "message type \"\(type)\" is unknown (this version knows \"session_update\" and \"config_update\")"
        case .missingPayload:
            return "message has no \"payload\" member"
        case let .wrongPayloadShape(reason):
            return "message payload has the wrong shape: \(reason)"
        case .invalidSeq:
            return "message \"seq\" is not an integer"
        case .invalidEpoch:
            return "message \"epoch\" is not a string"
        case let .sessionNotAnObject(got):
            return "a session must be a JSON object with \"name\", \"data\", \"config\" and \"metadata\", not \(withArticle(got))"
        case .missingName:
            return "the session has no \"name\"; add a string member \"name\""
        case let .wrongMemberType(member, expected, got):
            return "the session's \"\(member)\" must be \(withArticle(expected)), not \(withArticle(got))"
        }
    }

    /// The same sentence without the leading "message"/"the session" context, for nesting.
    var reason: String {
        switch kind {
        case let .sessionNotAnObject(got):
            return "the session must be an object, not \(withArticle(got))"
        case .missingName:
            return "the session has no \"name\""
        case let .wrongMemberType(member, expected, got):
            return "the session's \"\(member)\" must be \(withArticle(expected)), not \(withArticle(got))"
        default:
            return description
        }
    }
}

/// A JSON type name with its article, for messages: "an array", "a string", "null".
func withArticle(_ typeName: String) -> String {
    guard let first = typeName.first, typeName != "null" else { return typeName }
    return ("aeiou".contains(first) ? "an " : "a ") + typeName
}
