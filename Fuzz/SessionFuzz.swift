// libFuzzer target `session`: the session-file parser and the `--stdin` line protocol.
// Build and run with scripts/fuzz; what it checks is listed in Fuzz/README.md.
import Envelope
import Foundation

/// Where each input is written for `SessionFile.load` (tmpfs when available); removed at exit.
private let sessionPath: String = {
    let directory = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    atexit { _ = unlink(sessionPath) }
    return "\(directory)/statecast-fuzz-\(getpid()).json"
}()

/// The state `--stdin` lines are applied to, as the demo host would hold it.
///
/// Built per input rather than kept in a global: LeakSanitizer cannot see
/// pointers that Swift stores with enum tag bits, so a global `JSONValue`
/// tree is reported as leaked at exit.
private func startSession() -> Session {
    Session(
        name: "fuzz",
        data: ["points": [1, 2.5, "x"], "nested": ["a": ["b": nil]]],
        config: ["speed": 1.5, "mode": "wave", "on": true, "count": 3],
        metadata: ["owner": "fuzz"]
    )
}

@_cdecl("LLVMFuzzerTestOneInput")
public func sessionFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    checkSessionFile(bytes)
    checkStdinLines(bytes)
    return 0
}

// MARK: - Session file

/// Replaces the file's contents in place (plain write, no temporary file and rename).
private func writeFile(_ path: String, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var offset = 0
    while offset < bytes.count {
        let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0, errno == EINTR { continue }
        guard written > 0 else { return false }
        offset += written
    }
    return true
}

/// `SessionFile.load` on the input written to a file agrees with the in-memory
/// `JSONValue(parsing:)` + `Session(json:)`, and every session read re-encodes losslessly.
private func checkSessionFile(_ bytes: UnsafeBufferPointer<UInt8>) {
    let parsed = parseJSON(bytes)
    let inMemory: Result<Session, EnvelopeError>? = switch parsed {
    case let .success(value): Result { () throws(EnvelopeError) -> Session in try Session(json: value) }
    case .failure: nil
    }

    require(writeFile(sessionPath, bytes), "cannot write \(sessionPath)")
    let loaded = Result { () throws(SessionFileError) -> Session in try SessionFile.load(sessionPath) }

    switch (parsed, inMemory, loaded) {
    case let (.failure(jsonError), _, .failure(fileError)):
        checkErrorIsWellFormed(jsonError, inputCount: bytes.count)
        require(fileError.line == jsonError.line && fileError.column == jsonError.column,
                "file error at \(fileError.description) but JSON error at \(jsonError.description)")
        require(fileError.message == jsonError.reason, "file error says \(fileError.message), JSON error \(jsonError.reason)")
        require(!fileError.isMissing, "a written file reported missing")
        require(fileError.description.hasPrefix("\(sessionPath):\(jsonError.line):\(jsonError.column): "),
                "file error description \(fileError.description)")
    case let (.success, .failure(sessionError)?, .failure(fileError)):
        require(fileError.line == 1 && fileError.column == 1 && !fileError.isMissing, "session error position \(fileError)")
        require(fileError.message.hasPrefix(sessionError.description), "file error \(fileError) vs \(sessionError)")
    case let (.success, .success(session)?, .success(fromFile)):
        require(session.encoded() == fromFile.encoded(), "SessionFile.load and Session(json:) disagree")
        checkSession(session)
    default:
        require(false, "SessionFile.load gave \(loaded), in memory \(show(parsed)) / \(String(describing: inMemory))")
    }
}

/// A session's own encodings decode back to it, bit for bit, and it does not differ from itself.
private func checkSession(_ session: Session) {
    let encoded = session.encoded()
    let text = String(decoding: encoded.prefix(300), as: UTF8.self)
    require(session.json.encoded() == encoded, "json and encoded() disagree for \(text)")
    require(session == session, "== is not reflexive for \(text)")
    require(SessionDiff(from: session, to: session) == .nothing, "a session differs from itself: \(text)")
    switch parseJSON(encoded) {
    case let .success(value):
        switch Result(catching: { () throws(EnvelopeError) -> Session in try Session(json: value) }) {
        case let .success(back): require(back.encoded() == encoded, "session round trip changed \(text)")
        case let .failure(error): require(false, "own encoding is not a session: \(error) for \(text)")
        }
    case let .failure(error):
        require(false, "own session encoding does not decode: \(error) for \(text)")
    }
    let envelope = Envelope(.sessionUpdate(session), seq: 1)
    switch Result(catching: { () throws(EnvelopeError) -> Envelope in try Envelope(decoding: envelope.encoded()) }) {
    case let .success(back): require(back.encoded() == envelope.encoded(), "session_update round trip changed \(text)")
    case let .failure(error): require(false, "session_update of a loaded session does not decode: \(error)")
    }
}

// MARK: - stdin lines

/// The input as `--stdin` lines (split as `readLine(strippingNewline: true)`
/// does, invalid UTF-8 repaired), applied one after the other with `SessionInput.apply`.
private func checkStdinLines(_ bytes: UnsafeBufferPointer<UInt8>) {
    var session = startSession()
    for lineBytes in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
        let line = String(decoding: lineBytes.last == 0x0D ? lineBytes.dropLast() : lineBytes, as: UTF8.self)
        if line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) { continue }
        guard case let .success(value) = parseJSON(text: line) else { continue }

        let before = session.encoded()
        var next = session
        do throws(SessionInputError) {
            try SessionInput.apply(value, to: &next)
        } catch {
            require(next.encoded() == before, "a rejected line changed the session: \(error)")
            require(!error.description.isEmpty, "empty SessionInputError")
            continue
        }
        checkApplied(value, from: session, to: next)
        session = next
    }
    checkSession(session)
}

/// What `apply` did is what SPEC §3 says a line does.
private func checkApplied(_ line: JSONValue, from old: Session, to new: Session) {
    guard case let .object(members) = line else { return require(false, "a non-object line was applied") }
    if let whole = members["session"] {
        switch Result(catching: { () throws(EnvelopeError) -> Session in try Session(json: whole) }) {
        case let .success(expected): require(expected.encoded() == new.encoded(), "\"session\" did not replace the state")
        case let .failure(error): require(false, "an invalid \"session\" was applied: \(error)")
        }
        return
    }
    if let name = members["name"] { require(identical(name, .string(new.name)), "name not replaced") } else { require(new.name == old.name, "name changed") }
    require(identical(members["data"] ?? old.data, new.data), "data not replaced / changed")
    require(identical(.object(members["metadata"]?.objectValue ?? old.metadata), .object(new.metadata)), "metadata not replaced / changed")
    let changes = members["config"]?.objectValue ?? [:]
    for (key, value) in changes {
        if value.isNull { require(new.config[key] == nil, "null did not remove config key \(key)") }
        else { require(new.config[key].map { identical($0, value) } == true, "config key \(key) not merged") }
    }
    for (key, value) in old.config where changes[key] == nil {
        require(new.config[key].map { identical($0, value) } == true, "config key \(key) changed without being named")
    }
    for key in new.config.keys where changes[key] == nil {
        require(old.config[key] != nil, "config key \(key) appeared without being named")
    }
}
