import Envelope

/// `GET /metrics`, `/healthz` and `/readyz` (docs/OPERATIONS.md), answered on
/// the service thread like `/status`.
///
/// Token rules: `/healthz` and `/readyz` say only whether the host is alive
/// and ready, so they answer without the token (load balancers and systemd
/// probes rarely carry one); `/metrics` shows viewer counts and traffic, so
/// with `--token` set it needs the token like `/status` does (Prometheus:
/// `authorization: {credentials_file: …}`), else 401.
extension ServiceCore {
    struct HTTPAnswer {
        var status: UInt32
        var contentType: String
        var body: [UInt8]
    }

    /// The answer for an operations path, or nil for any other path.
    func operationsAnswer(_ wsi: OpaquePointer, path: String) -> HTTPAnswer? {
        switch path {
        case "/healthz", "/healthz/":
            return HTTPAnswer(status: 200, contentType: "application/json", body: Array(#"{"status":"ok"}"#.utf8))
        case "/readyz", "/readyz/":
            let notReady = readinessProblem()
            let body: JSONValue = notReady.map { ["status": "not ready", "reason": .string($0)] } ?? ["status": "ready"]
            return HTTPAnswer(status: notReady == nil ? 200 : 503, contentType: "application/json", body: body.encoded())
        case "/metrics", "/metrics/":
            guard access.isAuthorized(Self.request(wsi, isUpgrade: false)) else {
                return HTTPAnswer(status: 401, contentType: "application/json",
                                  body: Array(#"{"error":"/metrics needs the token: Authorization: Bearer … or ?token=…"}"#.utf8))
            }
            let sse = viewers.reduce(0) { $0 + (pss($1)?.pointee.is_sse != 0 ? 1 : 0) }
            let snapshot = HostMetrics.Snapshot(
                websocketViewers: viewers.count - sse, sseViewers: sse, status: shared.status(clientCount: viewers.count))
            return HTTPAnswer(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8",
                              body: Array(metrics.render(snapshot).utf8))
        default:
            return nil
        }
    }

    /// Nil when ready: listening and not stopping, and for a relay, following Redis.
    private func readinessProblem() -> String? {
        if stopping { return "stopping" }
        let extras = shared.status(clientCount: viewers.count).extras
        if case .bool(true)? = extras["degraded"] {
            return "the relay lost Redis; it serves the last state it had and reconnects"
        }
        return nil
    }
}
