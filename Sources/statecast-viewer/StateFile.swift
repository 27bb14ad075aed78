import Envelope
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps a file equal to the viewer's current state: each write goes to a
/// temporary file in the same directory, then replaces the file with
/// `rename`, so a reader never sees a half-written state.
///
/// Writes coalesce: if states arrive faster than the disk takes them, only
/// the newest is written. ``flush()`` writes the latest state at once.
final class StateFile: Sendable {
    let path: String
    private let temporaryPath: String
    private let pending = Mutex<(latest: Session?, written: Session?)>((nil, nil))

    init(path: String) {
        self.path = path
        temporaryPath = "\(path).tmp-\(getpid())"
    }

    /// Why `path` cannot become the state file (its folder missing, not a folder or not
    /// writable, or `path` itself a folder), as one sentence; nil when it can. Checked before
    /// connecting, so a typo in --output fails at once instead of after the first state.
    static func problem(with path: String) -> String? {
        let folder = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        var info = stat()
        guard stat(folder, &info) == 0 else {
            return "the folder \(folder) of --output \(path) cannot be used (\(String(cString: strerror(errno)))); create it or give another path"
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            return "\(folder) in --output \(path) is not a folder; give a path in an existing folder"
        }
        guard access(folder, W_OK | X_OK) == 0 else {
            return "the folder \(folder) of --output \(path) is not writable; give a path in a folder you can write to"
        }
        if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            return "--output \(path) is a folder; give a file name, for example \(path)/state.json"
        }
        return nil
    }

    /// Records `session` as the state to write.
    func update(_ session: Session) {
        pending.withLock { $0.latest = session }
    }

    /// Writes the latest state if it was not written yet. Throws a sentence on failure.
    func flush() throws(StateFileError) {
        guard let session = pending.withLock({ $0.latest == $0.written ? nil : $0.latest }) else { return }
        var bytes = Array(session.json.prettyText(indent: 2).utf8)
        bytes.append(UInt8(ascii: "\n"))
        try replaceFile(with: bytes)
        pending.withLock { $0.written = session }
    }

    private func replaceFile(with bytes: [UInt8]) throws(StateFileError) {
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StateFileError(path: path, action: "create a temporary file next to", errno: errno) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(descriptor)
                unlink(temporaryPath)
                throw StateFileError(path: path, action: "write", errno: code)
            }
            offset += written
        }
        close(descriptor)
        guard rename(temporaryPath, path) == 0 else {
            let code = errno
            unlink(temporaryPath)
            throw StateFileError(path: path, action: "replace", errno: code)
        }
    }
}

/// Why the state file could not be written, as one sentence.
struct StateFileError: Error, CustomStringConvertible {
    let path: String
    let action: String
    let errno: Int32

    var description: String {
        "could not \(action) \(path) (\(String(cString: strerror(errno)))); check that its directory exists and is writable"
    }
}
