/// An error a viewer reports to its user: what went wrong and how to fix it.
///
/// A public struct around a private enum, so new kinds of error do not break
/// code that switches over ``Code``. `description` is one sentence a user can
/// act on; CLIs print it as it is.
///
/// ```swift
/// do {
///     _ = try ViewerURL(parsing: "http://host:9876")
/// } catch {
///     print(error)   // the URL "http://host:9876" uses http://; …
/// }
/// ```
public struct ViewerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of error, stable across releases.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case badURL = "bad URL"
            case invalidConfiguration = "invalid configuration"
            case notAuthorized = "not authorized"
            case timedOut = "timed out"
            case engineFailure = "engine failure"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The URL given to the viewer cannot be used (checked before any connection attempt).
        public static let badURL = Code(.badURL)
        /// A configuration value is out of range (for example a ping timeout not above the ping interval).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The host refused the connection with HTTP 401 or 403; the viewer does not retry.
        public static let notAuthorized = Code(.notAuthorized)
        /// Something the caller waited for did not happen in time.
        public static let timedOut = Code(.timedOut)
        /// The WebSocket engine could not be started.
        public static let engineFailure = Code(.engineFailure)

        /// A short name for the kind, e.g. "bad URL".
        public var description: String { base.rawValue }
    }

    /// The kind of error.
    public let code: Code
    /// What went wrong, without a trailing period.
    public let message: String
    /// What the user can do about it, without a trailing period.
    public let fix: String

    /// Creates an error from its parts.
    public init(code: Code, message: String, fix: String) {
        self.code = code
        self.message = message
        self.fix = fix
    }

    /// One sentence: the message, then the fix.
    public var description: String { "\(message); \(fix)." }
}

extension ViewerError {
    static func badURL(_ text: String, _ problem: String, example: String = "ws://192.168.1.20:9876") -> ViewerError {
        ViewerError(code: .badURL, message: "the URL \"\(text)\" \(problem)", fix: "write it like \(example)")
    }

    static func invalidConfiguration(_ message: String, fix: String) -> ViewerError {
        ViewerError(code: .invalidConfiguration, message: message, fix: fix)
    }

    /// The error for a host that refused the handshake with HTTP 401 or 403
    /// ("the host refused the token (HTTP 401)"), for apps that report
    /// ``ConnectionState/notAuthorized(httpStatus:)`` to their user.
    public static func notAuthorized(httpStatus: Int) -> ViewerError {
        ViewerError(
            code: .notAuthorized,
            message: "the host refused the token (HTTP \(httpStatus))",
            fix: "check the token in the URL (…?token=…) against the one the host prints"
        )
    }
}
