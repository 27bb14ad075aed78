import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A deliberately small WebSocket client over a blocking socket, for tests:
/// it does the RFC 6455 handshake itself and reads unmasked server frames.
final class RawWebSocket {
    struct Frame: Equatable { var opcode: UInt8; var payload: [UInt8]; var text: String { String(decoding: payload, as: UTF8.self) } }
    enum Failure: Error { case connect(Int32), handshake(String), closed, timeout }

    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int, path: String = "/", timeoutSeconds: Int = 5) throws {
        fd = try Self.connect(port: port, timeoutSeconds: timeoutSeconds)
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        guard Self.sendAll(fd: fd, Array(request.utf8)) else { throw Failure.closed }
        let head = try readHead()
        guard head.hasPrefix("HTTP/1.1 101") else { throw Failure.handshake(head) }
    }

    deinit { close(fd) }

    /// A plain HTTP GET; returns status line and body.
    static func httpGet(port: Int, path: String) throws -> (status: String, body: String) {
        try rawRequest(port: port, text: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    }

    /// Sends `text` as is and reads until the server closes (or 1 s of silence after a 101).
    static func rawRequest(port: Int, text: String) throws -> (status: String, body: String) {
        let fd = try connect(port: port, timeoutSeconds: 2)
        defer { close(fd) }
        let request = Array(text.utf8)
        _ = request.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += chunk[0..<count]
            if received.starts(with: Array("HTTP/1.1 101".utf8)), received.firstRange(of: [13, 10, 13, 10] as [UInt8]) != nil { break }
        }
        let text = String(decoding: received, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        return (String(parts[0].split(separator: "\r\n").first ?? ""), parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    func readFrame() throws -> Frame {
        let header = try take(2)
        let opcode = header[0] & 0x0F
        var length = Int(header[1] & 0x7F)
        if length == 126 {
            let ext = try take(2)
            length = Int(ext[0]) << 8 | Int(ext[1])
        } else if length == 127 {
            let ext = try take(8)
            length = ext.reduce(0) { $0 << 8 | Int($1) }
        }
        return Frame(opcode: opcode, payload: try take(length))
    }

    /// The next text frame, skipping pings.
    func readText() throws -> String {
        while true {
            let frame = try readFrame()
            if frame.opcode == 1 { return frame.text }
            if frame.opcode == 8 { throw Failure.closed }
        }
    }

    /// Sends a masked frame (client frames must be masked).
    func sendFrame(opcode: UInt8, payload: [UInt8]) throws {
        guard Self.sendAll(fd: fd, Self.maskedFrame(opcode: opcode, payload: payload)) else { throw Failure.closed }
    }

    /// A whole masked client frame.
    static func maskedFrame(opcode: UInt8, payload: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        let mask: [UInt8] = [1, 2, 3, 4]
        frame += mask
        for (index, byte) in payload.enumerated() { frame.append(byte ^ mask[index % 4]) }
        return frame
    }

    /// Writes all of `bytes`; false when the peer closed first.
    @discardableResult
    static func sendAll(fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count == 0 { throw Failure.closed }
        if count < 0 { throw errno == EAGAIN ? Failure.timeout : Failure.closed }
        buffer += chunk[0..<count]
    }

    private func take(_ count: Int) throws -> [UInt8] {
        while buffer.count < count { try fill() }
        let result = Array(buffer[0..<count])
        buffer.removeFirst(count)
        return result
    }

    private func readHead() throws -> String {
        let terminator: [UInt8] = [13, 10, 13, 10]
        while true {
            if let range = buffer.firstRange(of: terminator) {
                let head = String(decoding: buffer[..<range.lowerBound], as: UTF8.self)
                buffer.removeSubrange(..<range.upperBound)
                return head
            }
            try fill()
        }
    }

    /// A blocking TCP socket connected to 127.0.0.1:port, with a receive timeout.
    static func connect(port: Int, timeoutSeconds: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 {
            close(fd)
            throw Failure.connect(errno)
        }
        return fd
    }
}
