import CHiredis

/// One blocking hiredis connection, used by exactly one thread (the
/// publisher's or the relay feed's): hiredis contexts are not thread-safe,
/// and nothing here may run on the libwebsockets service thread.
///
/// Every read and write has a timeout; any I/O error leaves the connection
/// failed for good (the owner drops it and reconnects with backoff).
final class RedisConnection {
    let url: RedisURL
    /// Largest reply (or pub/sub message) accepted; a bigger one fails the
    /// connection with "reply too large" instead of being buffered.
    let maxReplyBytes: Int
    private var context: UnsafeMutablePointer<redisContext>?

    /// The default bound on one reply: 64 MiB, far above any state a host publishes.
    static let defaultMaxReplyBytes = 64 << 20

    /// Connects, then `SELECT`s the database. Throws `.unreachable` naming the URL.
    init(url: RedisURL, timeout: Duration, maxReplyBytes: Int = RedisConnection.defaultMaxReplyBytes) throws(RedisError) {
        self.url = url
        self.maxReplyBytes = maxReplyBytes
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard let context = statecast_redis_connect(url.host, Int32(url.port), max(1, milliseconds)) else {
            throw .unreachable(url, "out of memory")
        }
        if statecast_redis_failed(context) != 0 {
            let reason = String(cString: statecast_redis_error_text(context))
            statecast_redis_free(context)
            throw .unreachable(url, reason.isEmpty ? "connection failed" : reason.lowercased())
        }
        self.context = context
        if url.database != 0 {
            do {
                try command("SELECT", String(url.database))
            } catch {
                close()
                throw error.isConnectionFailure ? .unreachable(url, "no answer to SELECT") : error
            }
        }
    }

    deinit { close() }

    /// Frees the connection; later calls throw `.connectionLost`.
    func close() {
        if let context { statecast_redis_free(context) }
        context = nil
    }

    var isOpen: Bool { context != nil }

    /// Sends one command and returns its reply; a Redis error reply throws `.refused`.
    @discardableResult
    func command(_ arguments: String...) throws(RedisError) -> RedisValue {
        try command(arguments.map { Array($0.utf8) })
    }

    /// Sends one command given as byte strings and returns its reply.
    @discardableResult
    func command(_ arguments: [[UInt8]]) throws(RedisError) -> RedisValue {
        try append(arguments)
        let reply = try nextReply()
        if case .error(let message) = reply { throw .refused(url, Self.name(of: arguments), message) }
        return reply
    }

    /// Sends several commands in one write and returns their replies in order
    /// (error replies are returned, not thrown).
    func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisValue] {
        for arguments in commands { try append(arguments) }
        var replies: [RedisValue] = []
        replies.reserveCapacity(commands.count)
        for _ in commands { replies.append(try nextReply()) }
        return replies
    }

    /// Queues a command and writes it out without waiting for its reply (pub/sub `PING`).
    func send(_ arguments: [[UInt8]]) throws(RedisError) {
        try append(arguments)
        guard let context = context, statecast_redis_flush(context) == REDIS_OK else { throw failure() }
    }

    /// The next message pushed by the server (pub/sub), waiting at most
    /// `timeout`; nil when none came. Never trips the socket's read timeout
    /// while idle.
    func nextPush(timeout: Duration) throws(RedisError) -> RedisValue? {
        guard let context else { throw .connectionLost(url, "closed") }
        if let reply = statecast_redis_buffered_reply(context) {
            defer { statecast_reply_free(reply) }
            return RedisValue(reply)
        }
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        switch statecast_redis_wait_readable(context, milliseconds) {
        case 0: return nil
        case 1: break
        default: throw failure()
        }
        guard statecast_redis_read(context) == REDIS_OK else { throw failure() }
        guard let reply = statecast_redis_buffered_reply(context) else {
            if statecast_redis_failed(context) != 0 { throw failure() }
            if statecast_redis_pending_bytes(context) > maxReplyBytes {
                statecast_redis_fail(context, "message too large")
                throw failure()
            }
            return nil  // part of a message; the rest comes with the next read
        }
        defer { statecast_reply_free(reply) }
        return RedisValue(reply)
    }

    private func append(_ arguments: [[UInt8]]) throws(RedisError) {
        guard let context else { throw .connectionLost(url, "closed") }
        let status: Int32 = withArgv(arguments) { argv, lengths in
            statecast_redis_append(context, Int32(arguments.count), argv, lengths)
        }
        guard status == REDIS_OK else { throw failure() }
    }

    private func nextReply() throws(RedisError) -> RedisValue {
        guard let context else { throw .connectionLost(url, "closed") }
        guard let reply = statecast_redis_reply_bounded(context, maxReplyBytes) else { throw failure() }
        defer { statecast_reply_free(reply) }
        return RedisValue(reply)
    }

    /// The connection's error as a RedisError; the connection is closed (hiredis cannot recover it).
    private func failure() -> RedisError {
        var reason = "connection closed"
        if let context, statecast_redis_failed(context) != 0 {
            let text = String(cString: statecast_redis_error_text(context))
            if !text.isEmpty { reason = text.lowercased() }
        }
        close()
        return .connectionLost(url, reason)
    }

    private static func name(of arguments: [[UInt8]]) -> String {
        arguments.first.map { String(decoding: $0, as: UTF8.self) } ?? "a command"
    }

    /// Calls `body` with C views of `arguments` (valid only during the call).
    private func withArgv<R>(_ arguments: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        let count = arguments.count
        let pointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(1, count))
        let lengths = UnsafeMutablePointer<Int>.allocate(capacity: max(1, count))
        // One contiguous copy keeps every argument alive and addressable during the call.
        let total = arguments.reduce(0) { $0 + $1.count }
        let storage = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, total))
        defer {
            pointers.deallocate()
            lengths.deallocate()
            storage.deallocate()
        }
        var offset = 0
        for (index, argument) in arguments.enumerated() {
            argument.withUnsafeBufferPointer { buffer in
                if let base = buffer.baseAddress, buffer.count > 0 {
                    UnsafeMutableRawPointer(storage + offset).copyMemory(from: base, byteCount: buffer.count)
                }
            }
            pointers[index] = UnsafePointer(storage + offset)
            lengths[index] = argument.count
            offset += argument.count
        }
        return body(pointers, lengths)
    }
}
