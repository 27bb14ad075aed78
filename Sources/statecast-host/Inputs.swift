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

/// SIGINT / SIGTERM, awaited once.
enum ShutdownSignal {
    static func wait() async -> Int32 {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        return await withCheckedContinuation { continuation in
            let queue = DispatchQueue(label: "statecast.signals")
            let once = OnceBox(continuation)
            var sources: [any DispatchSourceSignal] = []
            for number in [SIGINT, SIGTERM] {
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { once.resume(number) }
                source.resume()
                sources.append(source)
            }
            SignalSources.keep(sources)
        }
    }
}

/// Keeps the signal sources alive for the life of the process.
private enum SignalSources {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    // Written once, from ShutdownSignal.wait, before any signal can arrive.
    static func keep(_ new: [any DispatchSourceSignal]) { sources = new }
}

/// Resumes a continuation at most once.
private final class OnceBox: @unchecked Sendable {
    // @unchecked: `continuation` is only touched on the serial signal queue.
    private var continuation: CheckedContinuation<Int32, Never>?
    init(_ continuation: CheckedContinuation<Int32, Never>) { self.continuation = continuation }
    func resume(_ value: Int32) {
        continuation?.resume(returning: value)
        continuation = nil
    }
}
