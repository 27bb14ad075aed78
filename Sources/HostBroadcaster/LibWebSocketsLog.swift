import CLibWebSockets
import Logging
import Synchronization

/// Routes libwebsockets' own log lines into swift-log, at trace level.
///
/// lws has one process-wide log hook; the most recently started host or
/// viewer's logger receives the lines. StateCast reports what matters itself
/// (as one clear sentence), so lws's lines are diagnostics only.
enum LibWebSocketsLog {
    private static let logger = Mutex<Logger?>(nil)

    static func install(logger newLogger: Logger) {
        logger.withLock { $0 = newLogger }
        let verbose = newLogger.logLevel <= .trace
        lws_set_log_level(verbose ? statecast_lws_log_verbose() : statecast_lws_log_errors(), emit)
    }

    private static let emit: @convention(c) (Int32, UnsafePointer<CChar>?) -> Void = { level, line in
        guard let line else { return }
        var text = String(cString: line)
        while text.last == "\n" || text.last == "\r" { text.removeLast() }
        LibWebSocketsLog.logger.withLock { logger in
            logger?.trace("\(text)", metadata: ["lws-level": "\(level)"])
        }
    }
}
