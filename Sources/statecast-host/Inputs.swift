import Dispatch
import Envelope
import Foundation
import HostBroadcaster

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
enum SessionFileReloader {
    static func watch(path: String, store: SessionStore<ContinuousClock>) -> SessionFileWatcher {
        let reload: @Sendable () -> Void = {
            do throws(SessionFileError) {
                let session = try SessionFile.load(path)
                store.replace(session)
            } catch {
                Console.warning("\(error.description); still serving the last good state")
            }
        }
        let watcher = SessionFileWatcher(path: path, onChange: reload)
        if !watcher.start() {
            Console.warning("cannot watch \(path) for changes (inotify unavailable); serving it as it is now")
        }
        // A save between the first read and the watch would otherwise go unseen;
        // reading again is harmless (an unchanged state sends nothing).
        if let session = try? SessionFile.load(path) { store.replace(session) }
        return watcher
    }
}
