/// A Redis failure a user can act on: one sentence naming the cause and the fix.
///
/// The CLI prints ``description`` as it is.
public struct RedisError: Error, Sendable, CustomStringConvertible, Equatable {
    private enum Code: Sendable, Equatable {
        case badURL
        case badChannel
        case unreachable
        case connectionLost
        case refused
        case noState
        case malformedState
    }

    private let code: Code

    /// One sentence naming the cause and the fix.
    public let description: String

    private init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    /// The `--redis` URL cannot be parsed.
    public static func badURL(_ text: String, _ problem: String) -> RedisError {
        RedisError(.badURL, "the Redis URL \"\(text)\" \(problem); give --redis as redis://HOST:PORT[/DB], e.g. redis://127.0.0.1:6379")
    }

    /// The `--channel` name cannot be used.
    public static func badChannel(_ name: String, _ problem: String) -> RedisError {
        RedisError(.badChannel, "the channel name \"\(name)\" \(problem); use letters, digits and . _ - (e.g. --channel lobby)")
    }

    /// No connection could be made.
    public static func unreachable(_ url: RedisURL, _ reason: String) -> RedisError {
        RedisError(.unreachable, "cannot reach Redis at \(url) (\(reason)); check that redis-server runs there and the --redis URL")
    }

    /// An established connection failed.
    public static func connectionLost(_ url: RedisURL, _ reason: String) -> RedisError {
        RedisError(.connectionLost, "lost the connection to Redis at \(url) (\(reason))")
    }

    /// Redis answered a command with an error.
    public static func refused(_ url: RedisURL, _ command: String, _ message: String) -> RedisError {
        RedisError(.refused, "Redis at \(url) refused \(command): \(message)")
    }

    /// No host has published on the channel yet.
    public static func noState(_ url: RedisURL, channel: String) -> RedisError {
        RedisError(.noState, "Redis at \(url) holds no state for channel \(channel); start `statecast-host serve --redis \(url) --channel \(channel)` first")
    }

    /// What Redis holds under the channel's keys is not a StateCast state.
    public static func malformedState(_ url: RedisURL, key: String, _ problem: String) -> RedisError {
        RedisError(.malformedState, "the key \(key) in Redis at \(url) is not a StateCast state (\(problem)); check that only StateCast writes keys under statecast:")
    }

    /// Whether the server could not be reached or the connection broke (worth retrying).
    public var isConnectionFailure: Bool { code == .unreachable || code == .connectionLost }
}
