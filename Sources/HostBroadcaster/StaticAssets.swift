/// Files the host serves over plain HTTP GET, embedded in the binary.
///
/// - `/`: the viewer page, which shows the live session in
///   any browser, a phone's included.
/// - `/statecast.js`: the viewer protocol as a dependency-free ES module, for
///   the page and for web apps.
///
/// Their sources are `web/index.html` and `web/statecast.js`, which SwiftPM
/// embeds as resources (`Sources/HostBroadcaster/web` links to `web/`), so
/// the bytes served are those files, with no generated copy to keep in step.
enum StaticAssets {
    struct Asset: Sendable {
        let contentType: String
        let body: [UInt8]
    }

    /// The asset at `path` (the request path without its query), if any.
    static func lookup(_ path: String) -> Asset? {
        switch path {
        case "/": viewerPage
        case "/statecast.js": statecastJS
        default: nil
        }
    }

    static let viewerPage = Asset(contentType: "text/html; charset=utf-8", body: PackageResources.index_html)
    static let statecastJS = Asset(contentType: "text/javascript; charset=utf-8", body: PackageResources.statecast_js)
}
