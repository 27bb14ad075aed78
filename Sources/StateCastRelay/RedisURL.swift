/// Where a Redis server is: `redis://HOST[:PORT][/DB]`, parsed strictly.
///
/// HOST is a DNS name, an IPv4 address or a bracketed IPv6 address; PORT
/// defaults to 6379; DB (a database number, 0 by default) selects where the
/// keys live (pub/sub channels are shared by every database). User info
/// (passwords), query strings, fragments and `rediss://` are refused: a
/// sentence names the problem.
///
/// ```swift
/// let url = try RedisURL(parsing: "redis://10.0.0.5:6379/2")
/// url.host   // "10.0.0.5"
/// url.port   // 6379
/// url.database   // 2
/// ```
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    /// Host name or address, without IPv6 brackets.
    public let host: String
    /// TCP port.
    public let port: Int
    /// Database number (`SELECT`); 0 by default.
    public let database: Int
    /// The URL exactly as given, so messages name what the user typed.
    public let text: String

    /// The URL as given.
    public var description: String { text }

    /// Parses `text`; throws a ``RedisError`` naming what is wrong.
    public init(parsing text: String) throws(RedisError) {
        func fail(_ problem: String) -> RedisError { .badURL(text, problem) }
        self.text = text
        guard !text.isEmpty else { throw fail("is empty") }
        guard text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value != 0x7F }) else {
            throw fail("contains spaces, control or non-ASCII characters")
        }
        guard let schemeEnd = text.range(of: "://") else { throw fail("has no redis:// scheme") }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "redis" else {
            if scheme == "rediss" { throw fail("asks for TLS (rediss://), which is not supported") }
            throw fail("uses the scheme \"\(scheme)\", but only redis:// is supported")
        }
        var rest = text[schemeEnd.upperBound...]
        guard !rest.contains("@") else { throw fail("has user info (a password), which is not supported") }
        guard !rest.contains("?"), !rest.contains("#") else { throw fail("has a query or fragment, which is not supported") }

        var databaseText: Substring?
        if let slash = rest.firstIndex(of: "/") {
            databaseText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var hostPart: Substring
        var portPart: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw fail("has an IPv6 address without its closing ]") }
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("has text after the IPv6 address's ]") }
                portPart = after.dropFirst()
            }
        } else {
            let pieces = rest.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw fail("has more than one ':' (write IPv6 addresses in brackets)") }
            hostPart = pieces[0]
            portPart = pieces.count == 2 ? pieces[1] : nil
            guard hostPart.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }) else {
                throw fail("has an invalid host name \"\(hostPart)\"")
            }
        }
        guard !hostPart.isEmpty else { throw fail("has no host") }
        host = String(hostPart)

        if let portPart {
            guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy(\.isASCIIDigit),
                  let port = Int(portPart), (1...65535).contains(port)
            else { throw fail("has an invalid port \"\(portPart)\" (give 1 to 65535)") }
            self.port = port
        } else {
            port = 6379
        }
        if let databaseText, !databaseText.isEmpty {
            guard databaseText.count <= 5, databaseText.allSatisfy(\.isASCIIDigit), let database = Int(databaseText) else {
                throw fail("has an invalid database \"\(databaseText)\" (give a number, e.g. /0)")
            }
            self.database = database
        } else {
            database = 0
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
