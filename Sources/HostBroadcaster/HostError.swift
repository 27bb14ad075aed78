/// A host failure a user can act on: what went wrong and how to fix it.
///
/// `description` is one sentence naming the cause and the fix; the CLI prints it as is.
public struct HostError: Error, Sendable, CustomStringConvertible, Equatable {
    private enum Code: Sendable, Equatable {
        case portInUse(Int)
        case bindFailed(String?, Int)
        case invalidConfiguration(String)
        case alreadyStarted
        case sessionFile(String)
        case unresolvableAddress(String)
    }

    private let code: Code

    /// One sentence naming the cause and the fix.
    public let description: String

    private init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    /// The port is taken by another process.
    public static func portInUse(_ port: Int) -> HostError {
        HostError(.portInUse(port), "port \(port) is already in use; stop the other program or choose another port with --port")
    }

    /// libwebsockets could not listen for a reason other than a busy port.
    public static func bindFailed(address: String?, port: Int) -> HostError {
        HostError(
            .bindFailed(address, port),
            "could not listen on \(address ?? "*"):\(port): the address is not one of this machine's (or its interface is not up yet); check the address given with --bind and the port given with --port")
    }

    /// The listen address is neither an address nor a name that resolves to one.
    public static func unresolvableAddress(_ name: String) -> HostError {
        HostError(
            .unresolvableAddress(name),
            "cannot listen on \"\(name)\": it is not an IP address and does not resolve to one; give --bind an address of this machine, e.g. 127.0.0.1 or 0.0.0.0")
    }

    /// A configuration value is out of range.
    public static func invalidConfiguration(_ message: String) -> HostError {
        HostError(.invalidConfiguration(message), message)
    }

    /// `start` was called on a running host.
    public static let alreadyStarted = HostError(.alreadyStarted, "the host is already running; call stop() before starting it again")

    /// A session file could not be used.
    public static func sessionFile(_ message: String) -> HostError {
        HostError(.sessionFile(message), message)
    }

    /// Whether this error is a busy port.
    public var isPortInUse: Bool {
        if case .portInUse = code { return true }
        return false
    }
}
