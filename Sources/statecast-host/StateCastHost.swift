import ArgumentParser
import Envelope
import HostBroadcaster

/// `statecast-host`: serve a session to viewers (SPEC §3).
@main
struct StateCastHost: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statecast-host",
        abstract: "Mirror one session's live state to many viewers over WebSocket.",
        version: StateCastVersion.line(program: "statecast-host", libwebsockets: HostBroadcaster.libwebsocketsVersion),
        subcommands: [Serve.self, Relay.self],
        defaultSubcommand: Serve.self
    )

    /// `-V` as well as `--version`, like websocat and curl; options from
    /// `STATECAST_*` environment variables (``EnvironmentOptions``).
    static func main() async {
        await main(StateCastVersion.expandingShortVersionFlag(EnvironmentOptions.current.arguments))
    }
}
