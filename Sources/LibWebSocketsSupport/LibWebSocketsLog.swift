import CLibWebSockets
import StateCastSupport

/// One owner's share of libwebsockets' single, process-wide log hook.
///
/// lws keeps one hook and one level mask per process: a second
/// `lws_set_log_level` replaces the first hook, so in an app that runs a host
/// and a viewer the last one to start would get every line and the other
/// none (the viewer would lose the certificate reason it reads from lws's
/// lines). StateCast therefore installs a single hook that hands each line to
/// every live owner, and sets the level to the union of what they ask for.
/// lws's lines name no connection or context, so each owner sees them all.
///
/// Keep the instance for as long as the owner (a host, a viewer transport)
/// wants lines; it unregisters when released.
package final class LibWebSocketsLog: Sendable {
    /// Receives one line, trailing line breaks removed, with lws's level bit.
    package typealias Sink = @Sendable (_ level: Int32, _ line: String) -> Void

    private struct Owner: Sendable {
        let levels: Int32
        let sink: Sink
    }

    private struct Registry: Sendable {
        var nextID: UInt64 = 0
        var owners: [UInt64: Owner] = [:]
    }

    /// `Locked` rather than a bare `Mutex`: see its comment on ThreadSanitizer.
    private static let registry = Locked(Registry())

    private let id: UInt64

    /// Registers `sink` for lws's lines at `levels` (a mask such as
    /// `statecast_lws_log_errors()`), and installs the hook if needed.
    package init(levels: Int32, sink: @escaping Sink) {
        id = Self.registry.withLock { registry in
            let id = registry.nextID
            registry.nextID += 1
            registry.owners[id] = Owner(levels: levels, sink: sink)
            Self.applyLevels(registry)
            return id
        }
    }

    deinit {
        Self.registry.withLock { registry in
            registry.owners[id] = nil
            Self.applyLevels(registry)
        }
    }

    /// Called under the registry lock, so that concurrent owners set the mask in order.
    private static func applyLevels(_ registry: Registry) {
        let levels = registry.owners.values.reduce(statecast_lws_log_errors()) { $0 | $1.levels }
        lws_set_log_level(levels, emit)
    }

    private static let emit: @convention(c) (Int32, UnsafePointer<CChar>?) -> Void = { level, line in
        guard let line else { return }
        var text = String(cString: line)
        while text.last == "\n" || text.last == "\r" { text.removeLast() }
        let sinks = LibWebSocketsLog.registry.withLock { registry in
            registry.owners.values.filter { $0.levels & level != 0 }.map(\.sink)
        }
        for sink in sinks { sink(level, text) }
    }
}
