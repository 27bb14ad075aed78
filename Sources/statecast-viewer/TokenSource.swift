import ViewerClient

/// Where the viewer's token came from, so a refusal can name the place to fix.
enum TokenSource: Equatable {
    case flag
    case file(String)
    case environment
    /// A `?token=` query in a URL (sent as it is; a `--token` goes as a header as well).
    case url

    /// "--token", "the token file /etc/x", "STATECAST_TOKEN", "the URL's ?token=".
    var name: String {
        switch self {
        case .flag: "--token"
        case let .file(path): "the token file \(path) (--token-file)"
        case .environment: "STATECAST_TOKEN"
        case .url: "the URL's ?token="
        }
    }

    /// The sources in effect: the option, file or environment token the viewer sends, and the URLs' query.
    static func sources(flag: String?, file: String?, environment: String?, urls: [String]) -> [TokenSource] {
        var sources: [TokenSource] = []
        if let file {
            sources.append(.file(file))
        } else if flag != nil {
            sources.append(.flag)
        } else if environment != nil {
            sources.append(.environment)
        }
        let urlHasToken = urls.contains { text in
            (try? ViewerURL(parsing: text)).map { $0.redactedPath != $0.path } ?? false
        }
        if urlHasToken { sources.append(.url) }
        return sources
    }

    /// The sentence for a host that refused the handshake with `status` (401/403) when the viewer sent `sources`.
    static func refusal(httpStatus status: Int, sources: [TokenSource]) -> String {
        guard !sources.isEmpty else {
            return "the host needs a token (HTTP \(status)): pass --token, --token-file or STATECAST_TOKEN"
        }
        let names = sources.map(\.name).joined(separator: " and ")
        return "the host refused the token (HTTP \(status)); it came from \(names): check it against the one the host prints"
    }
}
