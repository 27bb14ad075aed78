import CLibWebSockets
import Foundation
import Logging
import LibWebSocketsSupport
import StateCastSupport

/// What a viewer does with libwebsockets' log lines (through the shared hook,
/// ``LibWebSocketsLog``): they go to the viewer's logger at debug level (not
/// raw to stderr), and the reason OpenSSL gave for rejecting a certificate is
/// kept, because lws's connection-error text only says "connect SSL err 1".
enum LibraryLog {
    /// OpenSSL's X509_V_ERR code and text from the newest "SSL error: … err=N" line.
    private static let lastVerifyError = Locked<(code: Int, reason: String)?>(nil)

    /// Registers `logger` for lws's lines; keep the result while the viewer runs.
    static func register(logger: Logger) -> LibWebSocketsLog {
        let levels: Int32 = logger.logLevel <= .debug ? statecast_lws_log_warnings() : statecast_lws_log_errors()
        return LibWebSocketsLog(levels: levels) { _, line in
            if let verify = verifyError(in: line) { lastVerifyError.withLock { $0 = verify } }
            logger.debug("libwebsockets: \(TokenRedaction.redact(line))")
        }
    }

    /// The newest certificate verification failure, cleared as it is read.
    static func takeVerifyError() -> (code: Int, reason: String)? {
        lastVerifyError.withLock { last in
            defer { last = nil }
            return last
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
}
