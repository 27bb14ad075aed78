import CHiredis

/// One Redis reply, copied out of hiredis' memory.
enum RedisValue: Sendable, Equatable {
    case string([UInt8])
    case status(String)
    case error(String)
    case integer(Int64)
    case null
    case array([RedisValue])

    init(_ reply: UnsafePointer<redisReply>) {
        if statecast_reply_is_string(reply) != 0 {
            self = .string(Self.bytes(reply))
        } else if statecast_reply_is_status(reply) != 0 {
            self = .status(String(decoding: Self.bytes(reply), as: UTF8.self))
        } else if statecast_reply_is_error(reply) != 0 {
            self = .error(String(decoding: Self.bytes(reply), as: UTF8.self))
        } else if statecast_reply_is_integer(reply) != 0 {
            self = .integer(Int64(statecast_reply_integer(reply)))
        } else if statecast_reply_is_array(reply) != 0 {
            let count = statecast_reply_count(reply)
            self = .array((0..<count).map { RedisValue(statecast_reply_element(reply, $0)) })
        } else {
            self = .null
        }
    }

    private static func bytes(_ reply: UnsafePointer<redisReply>) -> [UInt8] {
        let length = statecast_reply_length(reply)
        guard length > 0, let start = statecast_reply_bytes(reply) else { return [] }
        return Array(UnsafeRawBufferPointer(start: start, count: length))
    }

    /// The bytes of a string (or status) reply.
    var bytes: [UInt8]? {
        switch self {
        case .string(let bytes): bytes
        case .status(let text): Array(text.utf8)
        default: nil
        }
    }

    /// The text of a string or status reply.
    var text: String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
}
