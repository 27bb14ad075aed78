import Envelope
import Synchronization
import ViewerClient

/// The `live` format: the current state, redrawn in place on the terminal,
/// with the connection state (and a reconnect countdown) on a status line.
/// Redraws at most ten times a second, however fast changes arrive.
final class LiveView: Sendable {
    private struct Model {
        var session: Session?
        var connection: ConnectionState = .disconnected
        var connectionSince = ContinuousClock.now
        var problem: String?
        var lastSeq: Int64?
        var changes = 0
        var dirty = true
    }

    private let url: ViewerURL
    private let model = Mutex(Model())

    init(url: ViewerURL) {
        self.url = url
    }

    func show(_ change: AppliedChange) {
        model.withLock { model in
            model.session = change.session
            if let seq = change.seq { model.lastSeq = seq }
            model.changes += 1
            model.dirty = true
        }
    }

    func show(_ state: ConnectionState, problem: String?) {
        model.withLock { model in
            model.connection = state
            model.connectionSince = .now
            model.problem = problem
            model.dirty = true
        }
    }

    /// Redraws whenever something changed (and every tick while a countdown runs) until cancelled.
    func run() async {
        Terminal.out("\u{1B}[?25l")  // hide the cursor while drawing
        while !Task.isCancelled {
            let frame = model.withLock { model -> String? in
                let counting = if case .reconnecting = model.connection { true } else { false }
                guard model.dirty || counting else { return nil }
                model.dirty = false
                return render(model)
            }
            if let frame { Terminal.out(frame) }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Draws the final frame and gives the terminal back.
    ///
    /// Host-chosen text (session name, keys, values, problems that quote the
    /// host) is drawn through ``Terminal/printable(_:)``; the only escape
    /// sequences written are the view's own.
    func finish() {
        let frame = model.withLock { render($0) }
        Terminal.out(frame + "\n\u{1B}[?25h")
    }

    private func render(_ model: Model) -> String {
        let size = Terminal.size() ?? (rows: 24, columns: 80)
        var lines: [String] = []
        if let session = model.session {
            lines.append("\u{1B}[1m\(Terminal.printable(session.name))\u{1B}[0m")
            lines.append(contentsOf: section("config", .object(session.config)))
            lines.append(contentsOf: section("data", session.data))
            lines.append(contentsOf: section("metadata", .object(session.metadata)))
        } else {
            lines.append("waiting for the host's state…")
        }
        let room = max(1, size.rows - 2)
        if lines.count > room {
            lines = Array(lines.prefix(room - 1)) + ["… (\(lines.count - room + 1) more lines)"]
        }
        var screen = "\u{1B}[H\u{1B}[2J"
        for line in lines { screen += clip(line, to: size.columns) + "\n" }
        screen += "\u{1B}[\(size.rows);1H\u{1B}[7m" + clip(statusLine(model), to: size.columns, pad: true) + "\u{1B}[0m"
        return screen
    }

    /// A titled block: one `key: value` line per member of an object, else the value's JSON.
    private func section(_ title: String, _ value: JSONValue) -> [String] {
        var lines = ["\u{1B}[2m\(title)\u{1B}[0m"]
        if case let .object(members) = value {
            if members.isEmpty { lines.append("  (empty)") }
            for (key, member) in members { lines.append("  \(Terminal.printable(key)): \(Terminal.printable(member.jsonText))") }
        } else {
            lines.append("  " + Terminal.printable(value.jsonText))
        }
        return lines
    }

    private func statusLine(_ model: Model) -> String {
        var parts: [String]
        switch model.connection {
        case let .reconnecting(attempt, delay):
            let left = max(.zero, delay - (ContinuousClock.now - model.connectionSince))
            parts = ["reconnecting in \(tenths(left)) s (attempt \(attempt))"]
            if let problem = model.problem { parts.append(Terminal.printable(problem)) }
        case .connected:
            parts = ["● connected to \(url)"]
        case .connecting:
            parts = ["connecting to \(url)…"]
        default:
            parts = [model.connection.description]
        }
        if let seq = model.lastSeq { parts.append("seq \(seq)") }
        parts.append("\(model.changes) change\(model.changes == 1 ? "" : "s")")
        return " " + parts.joined(separator: " · ")
    }

    private func tenths(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let tenths = Int(seconds) * 10 + Int(attoseconds / 100_000_000_000_000_000)
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// Cuts `line` to `width` visible characters (escape sequences do not count).
    private func clip(_ line: Substring, to width: Int, pad: Bool = false) -> String {
        clip(String(line), to: width, pad: pad)
    }

    private func clip(_ line: String, to width: Int, pad: Bool = false) -> String {
        var result = ""
        var visible = 0
        var inEscape = false
        for character in line {
            if inEscape {
                result.append(character)
                if character.isLetter { inEscape = false }
                continue
            }
            if character == "\u{1B}" {
                inEscape = true
                result.append(character)
                continue
            }
            guard visible < width else { break }
            result.append(character)
            visible += 1
        }
        if pad, visible < width { result += String(repeating: " ", count: width - visible) }
        return result
    }
}
