public import Envelope
import Foundation

/// Reading a session from a JSON file, with errors that name file, line and column.
public enum SessionFile {
    /// Reads and validates the session at `path`.
    ///
    /// - Throws: ``SessionFileError``: missing or unreadable file, invalid JSON
    ///   (`FILE:LINE:COLUMN: …`), or JSON that is not a session.
    public static func load(_ path: String) throws(SessionFileError) -> Session {
        guard let bytes = contents(of: path) else {
            let missing = !FileManager.default.fileExists(atPath: path)
            throw SessionFileError(
                path: path,
                message: missing ? "no such file; check the path" : "cannot be read; check its permissions",
                isMissing: missing)
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw SessionFileError(path: path, line: error.line, column: error.column, message: "\(error.reason)",
                                   isEmpty: bytes.isEmpty)
        }
        do {
            return try Session(json: value)
        } catch {
            throw SessionFileError(path: path, line: 1, column: 1, message: "\(error); a session is {\"name\":…,\"data\":…,\"config\":{…},\"metadata\":{…}}")
        }
    }

    /// The bytes of the regular file at `path`, or nil when it cannot be opened or read.
    ///
    /// Plain POSIX reads rather than `Data(contentsOf:)`: on Linux, Foundation (Swift 6.3)
    /// leaks a 4 KB buffer every time it reads an empty file, and editors that truncate
    /// before writing make the watcher read an empty file on many saves.
    private static func contents(of path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)  // O_NONBLOCK: never hang on a FIFO
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes.append(contentsOf: chunk[..<count])
            } else if count == 0 {
                return bytes
            } else if errno != EINTR {
                return nil
            }
        }
    }
}

/// Why a session file could not be used.
public struct SessionFileError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The file.
    public let path: String
    /// 1-based position of the problem, when it is in the JSON.
    public let line: Int?
    public let column: Int?
    /// What is wrong and how to fix it.
    public let message: String
    /// The file does not exist (editors that save by rename make it vanish briefly).
    public let isMissing: Bool
    /// The file is empty (an editor truncated it and has not written it yet).
    public let isEmpty: Bool

    init(path: String, line: Int? = nil, column: Int? = nil, message: String, isMissing: Bool = false, isEmpty: Bool = false) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        self.isMissing = isMissing
        self.isEmpty = isEmpty
    }

    /// `FILE:LINE:COLUMN: message` (or `FILE: message`).
    public var description: String {
        if let line, let column { return "\(path):\(line):\(column): \(message)" }
        return "\(path): \(message)"
    }
}
