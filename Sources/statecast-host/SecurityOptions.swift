import ArgumentParser

/// Who may connect, and TLS (`serve --help`'s "Security" group).
struct SecurityOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Require viewers to present this token (Authorization: Bearer … or ?token=…). Also: STATECAST_TOKEN.")
    var token: String?

    @Option(help: "Read the token from this file (first line).")
    var tokenFile: String?

    @Option(help: "Allow browser viewers from this origin only (repeatable, e.g. https://app.example). Default: any origin.")
    var allowOrigin: [String] = []

    @Option(help: "PEM certificate: serve wss:// and https:// (with --tls-key).")
    var tlsCert: String?

    @Option(help: "PEM private key for --tls-cert, unencrypted (the host cannot ask for a passphrase).")
    var tlsKey: String?

    func validate() throws {
        if token != nil && tokenFile != nil { throw ValidationError("give either --token or --token-file, not both") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together; give both or neither") }
    }
}
