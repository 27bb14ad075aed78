import ArgumentParser

/// What `statecast-viewer` prints on standard output.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    /// A readable view of the current state, redrawn in place, with a status line.
    case live
    /// One JSON line per applied change: {"seq":…,"type":…,"changed":[…],"state":{…}}.
    case jsonLines = "json-lines"
    /// Nothing (use with --output).
    case quiet
}
