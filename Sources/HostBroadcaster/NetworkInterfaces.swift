#if canImport(Glibc)
import Glibc
#endif

/// This machine's addresses, for the URLs the host prints and `/status`.
public enum NetworkInterfaces {
    /// Every non-loopback IPv4 address of an interface that is up.
    public static func lanIPv4Addresses() -> [String] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0, let first = head else { return [] }
        defer { freeifaddrs(head) }
        var result: [String] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            let flags = Int32(entry.pointee.ifa_flags)
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0 else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { ipv4 in
                var raw = ipv4.pointee.sin_addr
                _ = inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
            }
            let string = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !result.contains(string) { result.append(string) }
        }
        return result
    }

    /// The first LAN address, if there is one.
    public static func preferredLANAddress() -> String? { lanIPv4Addresses().first }

    /// The address to give libwebsockets for `--bind NAME`: nil (every
    /// interface) for nil or `0.0.0.0`, an IP literal or an interface name as
    /// it is, and a host name (`localhost`) resolved to its first address,
    /// IPv4 first. lws itself does not resolve names: given one it listened
    /// on nothing.
    static func listenAddress(for name: String?) throws(HostError) -> String? {
        guard let name, name != "0.0.0.0" else { return name }
        if isNumericAddress(name) || if_nametoindex(name) != 0 { return name }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var head: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &head) == 0, let first = head else { throw .unresolvableAddress(name) }
        defer { freeaddrinfo(head) }
        var found: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ai_next }
            guard let address = entry.pointee.ai_addr else { continue }
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(address, entry.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                found.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        guard let chosen = found.first(where: { $0.contains(".") }) ?? found.first else { throw .unresolvableAddress(name) }
        return chosen
    }

    /// Whether `text` is an IPv4 or IPv6 literal.
    static func isNumericAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// Whether binding `address:port` fails with EADDRINUSE right now.
    static func isPortInUse(_ port: Int, address: String?) -> Bool {
        guard port > 0 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = in_port_t(UInt16(port).bigEndian)
        let host = (address == nil || address == "0.0.0.0") ? "0.0.0.0" : address!
        guard inet_pton(AF_INET, host, &sin.sin_addr) == 1 else { return false }
        let result = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result != 0 && errno == EADDRINUSE
    }
}
