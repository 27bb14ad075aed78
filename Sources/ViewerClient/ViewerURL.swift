/// A host's WebSocket address, parsed strictly before any connection attempt.
///
/// Accepted: `ws://HOST[:PORT][/PATH][?QUERY]` and `wss://…` (TLS; the
/// `secure` flag is carried for the transport), and, read as those, the
/// `http://` and `https://` addresses a host prints for browsers and a bare
/// `HOST:PORT` (``interpretation(of:)`` says which URL was used). HOST is a DNS name, an IPv4
/// address or a bracketed IPv6 address (`[::1]`). The port defaults to 80
/// for `ws://` and 443 for `wss://`, as for any WebSocket URL; the path
/// defaults to `/`. User info, fragments, spaces and non-ASCII characters
/// are refused, each with a sentence naming the problem and an example.
///
/// ```swift
/// let url = try ViewerURL(parsing: "ws://192.168.1.20:9876/?token=abc")
/// url.host   // "192.168.1.20"
/// url.port   // 9876
/// url.path   // "/?token=abc"
/// ```
public struct ViewerURL: Sendable, Hashable, CustomStringConvertible {
    /// `true` for `wss://` (TLS).
    public let secure: Bool
    /// The host name or address, without IPv6 brackets.
    public let host: String
    /// The TCP port.
    public let port: Int
    /// The path and query sent in the request line; starts with `/`.
    public let path: String
    /// `true` when `host` is an IPv6 address.
    public let isIPv6: Bool

    /// Parses and checks `text`; throws a ``ViewerError`` with code `.badURL` naming the problem.
    public init(parsing text: String) throws(ViewerError) {
        func fail(_ problem: String) -> ViewerError { .badURL(text, problem) }

        guard !text.isEmpty else { throw fail("is empty") }
        if let bad = text.unicodeScalars.first(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            throw fail(bad == " " ? "contains a space" : "contains a control character")
        }
        guard text.unicodeScalars.allSatisfy({ $0.isASCII }) else {
            throw fail("contains non-ASCII characters (percent-encode them)")
        }

        // Scheme: http(s):// is the browser page's address on the same port; a bare HOST:PORT means ws://.
        let scheme: String
        let rest: Substring
        if let schemeEnd = Self.range(of: "://", in: text[...]) {
            scheme = text[..<schemeEnd.lowerBound].lowercased()
            rest = text[schemeEnd.upperBound...]
        } else if text.contains(":") {
            (scheme, rest) = ("ws", text[...])
        } else {
            throw .badURL(text, "has no ws:// scheme and no port", example: "ws://\(text):9876")
        }
        switch scheme {
        case "ws", "http": secure = false
        case "wss", "https": secure = true
        default:
            throw fail("uses the scheme \"\(scheme)\", but a viewer needs ws:// or wss://")
        }
        guard !rest.contains("#") else { throw fail("has a #fragment, which WebSocket URLs cannot carry") }

        // Authority, then path and query.
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var pathAndQuery = String(rest[authorityEnd...])
        if pathAndQuery.isEmpty {
            pathAndQuery = "/"
        } else if pathAndQuery.hasPrefix("?") {
            pathAndQuery = "/" + pathAndQuery
        }
        guard !authority.contains("@") else { throw fail("has user info before @, which viewers do not send") }
        guard !authority.isEmpty else { throw fail("has no host") }

        // Host and port.
        var hostPart: Substring
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw fail("has an IPv6 address without its closing ]") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("has text after the IPv6 address's ]") }
                portPart = after.dropFirst()
            }
            guard !hostPart.contains("%") else { throw fail("has an IPv6 zone (%…), which is not supported") }
            guard Self.isIPv6Address(hostPart) else { throw fail("has \"[\(hostPart)]\", which is not an IPv6 address") }
            isIPv6 = true
        } else {
            if let colon = authority.firstIndex(of: ":") {
                hostPart = authority[..<colon]
                portPart = authority[authority.index(after: colon)...]
                if portPart?.contains(":") == true {
                    throw .badURL(text, "has more than one colon in its host (IPv6 addresses go in brackets)", example: "ws://[::1]:9876")
                }
            } else {
                hostPart = authority
            }
            guard !hostPart.isEmpty else { throw fail("has no host") }
            if hostPart.allSatisfy({ $0.isNumber || $0 == "." }) {
                guard Self.isIPv4Address(hostPart) else { throw fail("has \"\(hostPart)\", which is not an IPv4 address") }
            } else {
                guard Self.isHostName(hostPart) else { throw fail("has \"\(hostPart)\", which is not a valid host name") }
            }
            isIPv6 = false
        }
        host = String(hostPart)

        if let portPart {
            guard !portPart.isEmpty else { throw fail("has a colon but no port number") }
            guard portPart.count <= 5, portPart.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(portPart),
                  (1...65535).contains(value)
            else { throw fail("has the port \"\(portPart)\"; a port is a number from 1 to 65535") }
            port = value
        } else {
            port = secure ? 443 : 80
        }
        path = pathAndQuery
    }

    /// How `text` was read, as a sentence for the user, when it was not a
    /// `ws://` or `wss://` URL with a port; nil when it was, or when it does not parse.
    ///
    /// ```swift
    /// ViewerURL.interpretation(of: "http://10.0.0.5:9876/")
    /// // "using ws://10.0.0.5:9876/ for http://10.0.0.5:9876/"
    /// ViewerURL.interpretation(of: "ws://10.0.0.5")
    /// // "using ws://10.0.0.5:80/: the URL has no port, so 80; StateCast hosts listen on 9876 unless started with --port"
    /// ```
    public static func interpretation(of text: String) -> String? {
        guard let url = try? ViewerURL(parsing: text) else { return nil }
        let schemeEnd = range(of: "://", in: text[...])
        let scheme = schemeEnd.map { text[..<$0.lowerBound].lowercased() } ?? ""
        let rest = schemeEnd.map { text[$0.upperBound...] } ?? text[...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let hostEnd = authority.hasPrefix("[") ? authority.firstIndex(of: "]") ?? authority.endIndex : authority.startIndex
        let hasPort = authority[hostEnd...].contains(":")
        let shown = TokenRedaction.redact(text)
        var sentence = "using \(url)"
        if scheme != "ws" && scheme != "wss" { sentence += " for \(shown)" }
        if !hasPort {
            sentence += ": the URL has no port, so \(url.port); StateCast hosts listen on 9876 unless started with --port"
        }
        return sentence == "using \(url)" ? nil : sentence
    }

    /// The URL in canonical form (lower-case scheme, explicit port), safe to
    /// print: the value of a `token` query parameter shows as `REDACTED`.
    public var description: String {
        let hostText = isIPv6 ? "[\(host)]" : host
        return "\(secure ? "wss" : "ws")://\(hostText):\(port)\(redactedPath)"
    }

    /// ``path`` with the value of a `token` query parameter shown as `REDACTED`
    /// (for logs and messages; the request itself carries the token).
    public var redactedPath: String { TokenRedaction.redact(path) }

    /// `path` with `query` (`name=value&…`) added to its query string.
    public func path(appendingQuery query: String) -> String {
        guard !query.isEmpty else { return path }
        if path.hasSuffix("?") || path.hasSuffix("&") { return path + query }
        return path + (path.contains("?") ? "&" : "?") + query
    }

    /// The `Host` header value: the host, with the port unless it is the scheme's default.
    var hostHeader: String {
        let hostText = isIPv6 ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? hostText : "\(hostText):\(port)"
    }

    /// The first occurrence of `needle` in `haystack` (no Foundation).
    static func range(of needle: String, in haystack: Substring) -> Range<Substring.Index>? {
        var start = haystack.startIndex
        while start < haystack.endIndex {
            if haystack[start...].hasPrefix(needle) {
                return start..<haystack.index(start, offsetBy: needle.count)
            }
            start = haystack.index(after: start)
        }
        return nil
    }

    static func isIPv4Address(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        return parts.allSatisfy { part in
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = Int(part), value <= 255
            else { return false }
            return part.count == 1 || part.first != "0"  // no leading zeros (octal ambiguity)
        }
    }

    static func isHostName(_ text: Substring) -> Bool {
        let name = text.hasSuffix(".") ? text.dropLast() : text
        guard !name.isEmpty, name.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard (1...63).contains(label.count), label.first != "-", label.last != "-" else { return false }
            return label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    static func isIPv6Address(_ text: Substring) -> Bool {
        guard !text.isEmpty else { return false }
        var groups = 0
        var text = text
        // An embedded IPv4 address at the end counts as two groups.
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard isIPv4Address(text[text.index(after: lastColon)...]) else { return false }
            groups += 2
            text = text[...lastColon]
            if !text.hasSuffix("::") { text = text.dropLast() }
        }
        var halves: [Substring] = []
        if let doubleColon = range(of: "::", in: text) {
            halves = [text[..<doubleColon.lowerBound], text[doubleColon.upperBound...]]
            guard range(of: "::", in: halves[1]) == nil else { return false }
        } else {
            halves = [text]
        }
        guard halves.count <= 2 else { return false }
        func countGroups(_ half: Substring) -> Int? {
            if half.isEmpty { return 0 }
            var count = 0
            for group in half.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(group.count), group.allSatisfy({ $0.isHexDigit }) else { return nil }
                count += 1
            }
            return count
        }
        var total = groups
        for half in halves {
            guard let count = countGroups(half) else { return false }
            total += count
        }
        return halves.count == 2 ? total <= 7 : total == 8
    }
}
