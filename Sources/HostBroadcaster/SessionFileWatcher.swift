import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Watches one file through inotify on its folder, so editors that save by
/// writing a temporary file and renaming it over the original are seen too.
///
/// `onChange` runs on the watcher's own thread after each burst of events for
/// the file (close-after-write, rename into place, creation, deletion).
public final class SessionFileWatcher: Sendable {
    private let directory: String
    private let fileName: String
    private let onChange: @Sendable () -> Void
    private let descriptors = Mutex<(inotify: Int32, wake: Int32)>((-1, -1))

    /// - Parameter path: the file to watch; its folder must exist.
    public init(path: String, onChange: @escaping @Sendable () -> Void) {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        directory = url.deletingLastPathComponent().path
        fileName = url.lastPathComponent
        self.onChange = onChange
    }

    /// Starts watching. Returns false when inotify is unavailable.
    @discardableResult
    public func start() -> Bool {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { return false }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM)
        guard inotify_add_watch(fd, directory, mask) >= 0 else {
            close(fd)
            return false
        }
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else {
            close(fd)
            return false
        }
        descriptors.withLock { $0 = (fd, pipeFDs[1]) }
        let wakeRead = pipeFDs[0]
        let name = fileName
        let callback = onChange
        let thread = Thread {
            Self.loop(inotify: fd, wake: wakeRead, fileName: name, onChange: callback)
            close(fd)
            close(wakeRead)
        }
        thread.name = "statecast-file-watcher"
        thread.start()
        return true
    }

    /// Stops watching.
    public func stop() {
        let wake = descriptors.withLock { descriptors -> Int32 in
            let wake = descriptors.wake
            descriptors = (-1, -1)
            return wake
        }
        guard wake >= 0 else { return }
        var byte: UInt8 = 1
        _ = write(wake, &byte, 1)
        close(wake)
    }

    private static func loop(inotify fd: Int32, wake: Int32, fileName: String, onChange: @Sendable () -> Void) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let headerSize = MemoryLayout<inotify_event>.size
        while true {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, -1)
            if ready < 0 { if errno == EINTR { continue } else { return } }
            if fds[1].revents != 0 { return }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { if errno == EINTR { continue } else { return } }
            var relevant = false
            var offset = 0
            buffer.withUnsafeBytes { raw in
                while offset + headerSize <= count {
                    let length = Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    let nameStart = offset + headerSize
                    let nameBytes = raw[nameStart..<min(count, nameStart + length)].prefix { $0 != 0 }
                    if String(decoding: nameBytes, as: UTF8.self) == fileName { relevant = true }
                    offset = nameStart + length
                }
            }
            if relevant { onChange() }
        }
    }
}
