import CLibWebSockets
import Foundation
import Logging
import Synchronization

/// libwebsockets' process-wide log hook for viewers: its lines go to the
/// viewer's logger at debug level (not raw to stderr), and the reason OpenSSL
/// gave for rejecting a certificate is kept, because lws's connection-error
/// text only says "connect SSL err 1".
enum LibraryLog {
    private struct State {
        var logger: Logger?
        /// OpenSSL's X509_V_ERR code and text from the newest "SSL error: … err=N" line.
        var lastVerifyError: (code: Int, reason: String)?
    }

    private static let state = Mutex(State())

    static func install(logger: Logger) {
        state.withLock { $0.logger = logger }
        let level: Int32 = logger.logLevel <= .debug ? statecast_lws_log_warnings() : statecast_lws_log_errors()
        lws_set_log_level(level, emit)
    }

    /// The newest certificate verification failure, cleared as it is read.
    static func takeVerifyError() -> (code: Int, reason: String)? {
        state.withLock { state in
            defer { state.lastVerifyError = nil }
            return state.lastVerifyError
        }
    }

    /// Parses `SSL error: unable to get local issuer certificate (preverify_ok=0;err=20;depth=0)`.
    static func verifyError(in line: String) -> (code: Int, reason: String)? {
        guard let start = line.range(of: "SSL error: "), let open = line.range(of: " (preverify_ok=", range: start.upperBound..<line.endIndex),
              let err = line.range(of: "err=", range: open.upperBound..<line.endIndex) else { return nil }
        let digits = line[err.upperBound...].prefix { $0.isNumber }
        guard let code = Int(digits) else { return nil }
        return (code, String(line[start.upperBound..<open.lowerBound]))
    }

    private static let emit: @convention(c) (Int32, UnsafePointer<CChar>?) -> Void = { level, line in
        guard let line else { return }
        var text = String(cString: line)
        while text.last == "\n" || text.last == "\r" { text.removeLast() }
        let verify = verifyError(in: text)
        let logger = state.withLock { state -> Logger? in
            if let verify { state.lastVerifyError = verify }
            return state.logger
        }
        logger?.debug("libwebsockets: \(TokenRedaction.redact(text))")
    }
}
