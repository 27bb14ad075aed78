import ArgumentParser

/// How changes to the session come in and go out (`serve --help`'s "Session input" group).
struct SessionInputOptions: ParsableArguments {
    @Option(help: "Trailing debounce window in milliseconds (0 sends every change at once).")
    var debounceMs: Int = 250

    @Option(help: "With a steady stream of changes, still send at least this often (milliseconds).")
    var maxWaitMs: Int?

    @Flag(help: "Read JSON lines from standard input: {\"session\":{…}} replaces, {\"config\":{…}} and friends patch.")
    var stdin = false

    @Flag(help: "Do not watch the session file for changes.")
    var noWatch = false

    func validate() throws {
        try ServingOptions.check(debounceMs, 0...86_400_000, "--debounce-ms")
        if let maxWaitMs { try ServingOptions.check(maxWaitMs, 1...86_400_000, "--max-wait-ms") }
    }
}
