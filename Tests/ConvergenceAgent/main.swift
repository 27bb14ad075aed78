// statecast-convergence-agent: an in-process `ViewerClient` driven by the
// convergence test (Tests/EndToEndTests/python/convergence/viewers.py).
//
//   statecast-convergence-agent URL [URL …]
//
// Prints one JSON line per event on stdout:
//   {"event":"state","seq":S,"type":"session_update","state":{…}}   every applied change
//   {"event":"status","state":"connected"}                              every connection state
//   {"event":"restarted"}                                               the old client is gone, a new one starts
// and obeys commands on stdin, one per line:
//   restart   disconnect (close 1000) and connect again with a new client (a fresh state)
//   quit      disconnect (close 1000) and exit 0
// Reconnects after a lost connection follow a short schedule (0.2 s ×1.5 up to
// 1 s) so a randomized run does not spend its time waiting; resuming is on.

import Envelope
import Foundation
import ViewerClient

/// Serializes writes to stdout so JSON lines never interleave.
actor Output {
    func line(_ value: JSONValue) {
        FileHandle.standardOutput.write(Data(value.encoded() + [UInt8(ascii: "\n")]))
    }
}

/// One connected client and the tasks that print what it reports.
struct ClientRun {
    let client: ViewerClient
    let tasks: [Task<Void, Never>]

    static func start(urls: [String], output: Output) throws -> ClientRun {
        var configuration = ViewerConfiguration()
        configuration.backoff = ReconnectBackoff(initialDelay: .milliseconds(200), multiplier: 1.5, maximumDelay: .seconds(1), jitter: 0.2)
        configuration.failoverDelay = .milliseconds(100)
        let client = try ViewerClient(urls: urls, configuration: configuration)
        let changes = client.changes
        let states = client.states
        let printChanges = Task {
            for await change in changes {
                await output.line(.object([
                    "event": "state",
                    "seq": change.seq.map { .int($0) } ?? .null,
                    "type": .string(change.type),
                    "state": change.session.json,
                ]))
            }
        }
        let printStates = Task {
            for await state in states {
                await output.line(.object(["event": "status", "state": .string("\(state)")]))
            }
        }
        client.start()
        return ClientRun(client: client, tasks: [printChanges, printStates])
    }

    func stop() async {
        await client.disconnect()
        for task in tasks { await task.value }
    }
}

let urls = Array(CommandLine.arguments.dropFirst())
guard !urls.isEmpty else {
    FileHandle.standardError.write(Data("usage: statecast-convergence-agent URL [URL …]; give the host's ws:// URL\n".utf8))
    exit(2)
}

let output = Output()
var session: ClientRun
do {
    session = try ClientRun.start(urls: urls, output: output)
} catch {
    FileHandle.standardError.write(Data("statecast-convergence-agent: \(error)\n".utf8))
    exit(2)
}

// Commands arrive on a plain thread (readLine blocks) and are handled here in order.
let (commands, sink) = AsyncStream.makeStream(of: String.self)
let reader = Thread {
    while let line = readLine() { sink.yield(line.trimmingCharacters(in: .whitespaces)) }
    sink.yield("quit")
}
reader.start()

for await command in commands {
    switch command {
    case "restart":
        await session.stop()
        await output.line(.object(["event": "restarted"]))
        do {
            session = try ClientRun.start(urls: urls, output: output)
        } catch {
            FileHandle.standardError.write(Data("statecast-convergence-agent: \(error)\n".utf8))
            exit(1)
        }
    case "quit":
        await session.stop()
        exit(0)
    case "":
        continue
    default:
        FileHandle.standardError.write(Data("statecast-convergence-agent: unknown command \"\(command)\"; use restart or quit\n".utf8))
    }
}
