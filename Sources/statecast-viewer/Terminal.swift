import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing to the standard streams without Foundation, flushed per call.
///
/// libwebsockets ignores SIGPIPE, so a reader that goes away (`| head -1`)
/// shows up as EPIPE here; the viewer then stops as if interrupted: it
/// closes the connection with 1000 and exits 0.
enum Terminal {
    private static let readerGone = Atomic<Bool>(false)

    static var stdoutIsTTY: Bool { isatty(STDOUT_FILENO) == 1 }
    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }

    /// Writes `text` to standard output and flushes it.
    static func out(_ text: String) {
        var text = text
        text.withUTF8 { bytes in writeAll(bytes, to: STDOUT_FILENO) }
    }

    /// Writes `bytes` to standard output and flushes it.
    static func out(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { writeAll($0, to: STDOUT_FILENO) }
    }

    /// Writes one line to standard error, prefixed with the program name
    /// (controls in `line` shown as `?`: it may quote the host).
    static func status(_ line: String) {
        var text = "statecast-viewer: \(printable(line))\n"
        text.withUTF8 { bytes in writeAll(bytes, to: STDERR_FILENO) }
    }

    /// `text` without anything a terminal would act on: C0 controls (ESC, BEL,
    /// newlines, …), DEL and C1 controls (U+0080–U+009F, e.g. the 8-bit CSI
    /// U+009B) are each shown as `?`. Everything a host chose (names, keys,
    /// values) goes through this before the live view draws it, so a host
    /// cannot set the window title, write the clipboard (`ESC ] 52`) or move
    /// the cursor.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            result.append(isControl(scalar) ? "?" : scalar)
        }
        return String(result)
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// Rows and columns of the terminal on standard output, if it is one.
    static func size() -> (rows: Int, columns: Int)? {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0, size.ws_col > 0 else { return nil }
        return (Int(size.ws_row), Int(size.ws_col))
    }

    private static func writeAll(_ bytes: UnsafeBufferPointer<UInt8>, to descriptor: Int32) {
        guard var base = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = write(descriptor, base, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE, descriptor == STDOUT_FILENO,
                   !readerGone.exchange(true, ordering: .relaxed) {
                    kill(getpid(), SIGINT)
                }
                return
            }
            remaining -= written
            base += written
        }
    }
}
