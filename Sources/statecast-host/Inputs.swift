import Dispatch
import Envelope
import Foundation
import HostBroadcaster
import Synchronization

/// `--stdin`: one JSON line at a time into the store; bad lines are skipped with a message.
enum StdinReader {
    static func start(store: SessionStore<ContinuousClock>) {
        let thread = Thread {
            var number = 0
            while let line = readLine(strippingNewline: true) {
                number += 1
                if line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) { continue }
                do throws(JSONError) {
                    let value = try JSONValue(parsing: line)
                    var failure: SessionInputError?
                    store.update { session in
                        do throws(SessionInputError) { try SessionInput.apply(value, to: &session) } catch { failure = error }
                    }
                    if let failure { Console.warning("stdin line \(number): \(failure.description); line skipped") }
                } catch {
                    Console.warning("stdin line \(number): invalid JSON at column \(error.column): \(error.reason); line skipped")
                }
            }
        }
        thread.name = "statecast-stdin"
        thread.start()
    }
}

/// Reloads the session file on change; an invalid or missing file keeps the last good state.
///
/// Editors that save with a backup rename (vim's `backupcopy=no`, emacs) move the file away
/// and write a new one: for a moment it is missing or empty. Such a read is checked again
/// after ``grace`` and reported only if no newer change of the file came in the meantime
/// and the file is still unusable then.
enum SessionFileReloader {
    /// How long a missing or empty file may take to come back before a warning.
    static let grace = DispatchTimeInterval.milliseconds(500)

    static func watch(path: String, store: SessionStore<ContinuousClock>) -> SessionFileWatcher {
        let reads = ReadGeneration()
        let watcher = SessionFileWatcher(path: path) {
            reload(path, into: store, reads: reads, graceAllowed: true)
        }
        if !watcher.start() {
            Console.warning("cannot watch \(path) for changes (inotify unavailable); serving it as it is now")
        }
        // A save between the first read and the watch would otherwise go unseen;
        // reading again is harmless (an unchanged state sends nothing).
        if let session = try? SessionFile.load(path) { store.replace(session) }
        return watcher
    }

    private static func reload(_ path: String, into store: SessionStore<ContinuousClock>, reads: ReadGeneration, graceAllowed: Bool) {
        let read = reads.next()
        do throws(SessionFileError) {
            store.replace(try SessionFile.load(path))
        } catch where graceAllowed && (error.isMissing || error.isEmpty) {
            DispatchQueue.global().asyncAfter(deadline: .now() + grace) {
                // A newer event read the file since: that read decides.
                guard reads.isLatest(read) else { return }
                reload(path, into: store, reads: reads, graceAllowed: false)
            }
        } catch {
            Console.warning("\(error.description); still serving the last good state")
        }
    }
}

/// Numbers the reads of the watched file, so a delayed recheck can tell whether a newer read happened.
private final class ReadGeneration: Sendable {
    private let latest = Atomic<UInt64>(0)

    /// Starts a read; returns its number.
    func next() -> UInt64 { latest.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue }

    /// True when no read started after `read`.
    func isLatest(_ read: UInt64) -> Bool { latest.load(ordering: .sequentiallyConsistent) == read }
}
