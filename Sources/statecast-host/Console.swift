#if canImport(Glibc)
import Glibc
#endif

/// Writing lines for people: stdout for status, stderr for problems.
///
/// Written with write(2), never FileHandle.write (which traps on EPIPE): a
/// reader that goes away (`statecast-host serve --qr | head -3`) costs the
/// rest of the output, never the host.
enum Console {
    /// SIGPIPE would end the process on the first write to a closed pipe or
    /// socket; ignored, such writes fail with EPIPE, which every writer handles.
    static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }

    static func out(_ line: String) {
        // Unbuffered, so a pipe sees each status line at once.
        write(line + "\n", to: STDOUT_FILENO)
    }

    static func error(_ message: String) {
        write("statecast-host: error: \(message)\n", to: STDERR_FILENO)
    }

    static func warning(_ message: String) {
        write("statecast-host: warning: \(message)\n", to: STDERR_FILENO)
    }

    /// Writes all of `text`, retrying after EINTR and short writes; gives up
    /// quietly when the reader is gone (EPIPE) or the descriptor fails.
    private static func write(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0, errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}
