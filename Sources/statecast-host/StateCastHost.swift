import ArgumentParser
import HostBroadcaster

/// `statecast-host`: serve a session to viewers (SPEC §3).
@main
struct StateCastHost: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statecast-host",
        abstract: "Mirror one session's live state to many viewers over WebSocket.",
        version: "statecast-host \(StateCastVersion.string) (libwebsockets \(HostBroadcaster.libwebsocketsVersion))",
        subcommands: [Serve.self, Relay.self],
        defaultSubcommand: Serve.self
    )
}
