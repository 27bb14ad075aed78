import Foundation

/// Who may open a viewer connection: token, origin, capacity and RFC 6455
/// handshake rules, decided before the upgrade (a pure function, no I/O).
struct AccessPolicy: Sendable {
    /// The shared secret viewers must present; nil: no token needed.
    let token: [UInt8]?
    /// Browser origins allowed to connect; empty: any origin.
    let allowedOrigins: [String]
    /// Most viewers at once; nil: no limit.
    let maxClients: Int?

    init(token: String?, allowedOrigins: [String], maxClients: Int?) {
        self.token = token.map { Array($0.utf8) }
        self.allowedOrigins = allowedOrigins.map { $0.lowercased() }
        self.maxClients = maxClients
    }

    /// What a request brought.
    struct Request: Sendable {
        var method: String = "GET"
        var authorization: String?
        var queryToken: String?
        var origin: String?
        var webSocketKey: String?
        var webSocketVersion: String?
        /// `Sec-WebSocket-Protocol`: the subprotocols the client offers, comma-separated.
        var subprotocols: String?
        var isUpgrade = true
    }

    /// The WebSocket subprotocol StateCast speaks; a client may also name none.
    static let subprotocol = "statecast"

    /// A refusal: HTTP status, reason phrase, extra header lines, body.
    struct Refusal: Equatable, Sendable {
        let status: Int
        let reason: String
        let headers: [String]
        let body: String
    }

    /// Whether the request may proceed (`nil`) or how to refuse it.
    func check(_ request: Request, clientCount: Int) -> Refusal? {
        if request.isUpgrade {
            if request.method != "GET" {
                return Refusal(status: 405, reason: "Method Not Allowed", headers: ["allow: GET"],
                               body: "a WebSocket upgrade must use GET\n")
            }
            if request.webSocketVersion?.trimmingCharacters(in: .whitespaces) != "13" {
                return Refusal(status: 426, reason: "Upgrade Required", headers: ["sec-websocket-version: 13"],
                               body: "only WebSocket version 13 is supported\n")
            }
            if !Self.isValidKey(request.webSocketKey) {
                return Refusal(status: 400, reason: "Bad Request", headers: [],
                               body: "Sec-WebSocket-Key must be 16 bytes in base64\n")
            }
            if let offered = request.subprotocols, !Self.offers(offered, Self.subprotocol) {
                // lws would drop such a request without a word; say why instead.
                return Refusal(status: 400, reason: "Bad Request", headers: [],
                               body: "unsupported WebSocket subprotocol; offer \"\(Self.subprotocol)\" or leave Sec-WebSocket-Protocol out\n")
            }
        }
        if !allowedOrigins.isEmpty, let origin = request.origin, !allowedOrigins.contains(origin.lowercased()) {
            return Refusal(status: 403, reason: "Forbidden", headers: [], body: "origin not allowed\n")
        }
        if !isAuthorized(request) {
            return Refusal(status: 401, reason: "Unauthorized", headers: ["www-authenticate: Bearer"],
                           body: "missing or wrong token\n")
        }
        if request.isUpgrade, let maxClients, clientCount >= maxClients {
            return Refusal(status: 503, reason: "Service Unavailable", headers: ["retry-after: 5"],
                           body: "the host has as many viewers as it allows\n")
        }
        return nil
    }

    /// A token is presented as `Authorization: Bearer …` or `?token=…`.
    ///
    /// `queryToken` is used as it comes: libwebsockets has already
    /// percent-decoded the query once, and decoding again would let
    /// `%2573` stand for `s`.
    func isAuthorized(_ request: Request) -> Bool {
        guard let token else { return true }
        var presented: [UInt8]?
        if let header = request.authorization {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { presented = Array(parts[1].utf8) }
        }
        if presented == nil, let query = request.queryToken { presented = Array(query.utf8) }
        guard let presented else { return false }
        return Self.constantTimeEqual(presented, token)
    }

    /// Compares without an early exit, so timing does not reveal a prefix.
    /// Different lengths never match (the whole length is compared, not its
    /// low bits); equal lengths are compared byte by byte to the end.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<a.count {
            difference |= a[index] ^ b[index]
        }
        return difference == 0
    }

    /// 405 for any method but GET on StateCast's read-only HTTP paths; nil for GET.
    static func methodRefusal(_ method: String) -> Refusal? {
        guard method != "GET" else { return nil }
        return Refusal(status: 405, reason: "Method Not Allowed", headers: ["allow: GET"],
                       body: "only GET is allowed here\n")
    }

    /// Whether the comma-separated `list` of `Sec-WebSocket-Protocol` names `name`.
    static func offers(_ list: String, _ name: String) -> Bool {
        list.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == name }
    }

    /// RFC 6455 §4.1: the key is 16 random bytes, base64-encoded (24 characters).
    static func isValidKey(_ key: String?) -> Bool {
        guard let key = key?.trimmingCharacters(in: .whitespaces), key.utf8.count == 24, key.hasSuffix("==") else { return false }
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let body = key.utf8.prefix(22)
        guard body.allSatisfy({ alphabet.contains($0) }) else { return false }
        // The last character before "==" carries 2 bits; its low 4 bits must be zero.
        let lastValues: Set<UInt8> = Set("AQgw".utf8)
        return lastValues.contains(body.last!)
    }
}

/// Hides `token=` values in anything that may be logged.
enum Redaction {
    static func redactingToken(in text: String) -> String {
        guard let range = text.range(of: "token=") else { return text }
        let tail = text[range.upperBound...]
        let end = tail.firstIndex(where: { $0 == "&" || $0 == " " || $0 == "#" }) ?? text.endIndex
        return text[..<range.upperBound] + "REDACTED" + redactingToken(in: String(text[end...]))
    }
}
