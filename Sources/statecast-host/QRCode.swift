import CQRencode
import Foundation
import HostBroadcaster

/// A QR code symbol from libqrencode: a square of dark and light modules.
struct QRCode: Equatable {
    /// Modules per side.
    let size: Int
    /// Row-major, `true` for a dark module.
    private let modules: [Bool]

    /// Encodes `text` (byte mode, error correction level L: the smallest symbol,
    /// which a phone scans best from a terminal).
    ///
    /// Returns nil if libqrencode cannot encode it (too long for a QR code).
    init?(encoding text: String) {
        guard let code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_L) else { return nil }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        size = width
        // Bit 0 of each byte is the module's colour (1 = dark); the other bits
        // describe the module's role, which a renderer does not need.
        modules = (0..<(width * width)).map { code.pointee.data[$0] & 1 == 1 }
    }

    /// Whether the module at column `x`, row `y` is dark; outside the symbol, light.
    func isDark(x: Int, y: Int) -> Bool {
        guard (0..<size).contains(x), (0..<size).contains(y) else { return false }
        return modules[y * size + x]
    }

    /// The symbol for a terminal: two module rows per line drawn with half
    /// blocks, black on white (ANSI colours, so it scans on dark and light
    /// terminals alike), with a light quiet zone of `quietZone` modules.
    func terminalLines(quietZone: Int = 2) -> [String] {
        let range = -quietZone..<(size + quietZone)
        var lines: [String] = []
        for y in stride(from: range.lowerBound, to: range.upperBound, by: 2) {
            var line = "\u{1B}[30;47m"
            for x in range {
                switch (isDark(x: x, y: y), isDark(x: x, y: y + 1)) {
                case (true, true): line += "█"
                case (true, false): line += "▀"
                case (false, true): line += "▄"
                case (false, false): line += " "
                }
            }
            line += "\u{1B}[0m"
            lines.append(line)
        }
        return lines
    }
}

/// `serve --qr`: the viewer page's URL as a QR code, for a phone to scan.
enum ViewerQR {
    /// The URL a phone on the same network opens, and whether a phone can reach it.
    ///
    /// The first LAN address the host listens on; if it listens on loopback
    /// only (or this machine has no LAN address), `127.0.0.1`, which only
    /// this machine can open. `https://` with TLS; a token rides along as
    /// `?token=…` (the page passes it on to its WebSocket).
    static func viewerURL(
        bind: String, port: Int, lanAddresses: [String], secure: Bool = false, token: String? = nil
    ) -> (url: String, reachable: Bool) {
        let address: String?
        if bind == "0.0.0.0" {
            address = lanAddresses.first
        } else {
            address = ServingOptions.isLoopback(bind) ? nil : bind
        }
        var url = "\(secure ? "https" : "http")://\(address ?? "127.0.0.1"):\(port)/"
        if let token { url += "?token=" + percentEncoded(token) }
        return (url, address != nil)
    }

    /// `text` with everything but RFC 3986's unreserved characters percent-encoded.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// Prints the URL and its QR code on standard output.
    static func print(bind: String, port: Int, secure: Bool, token: String?) {
        let (url, reachable) = viewerURL(
            bind: bind, port: port, lanAddresses: NetworkInterfaces.lanIPv4Addresses(), secure: secure, token: token)
        if !reachable {
            Console.warning(
                "--qr: the host listens on \(bind), which a phone cannot reach; "
                    + "use --bind 0.0.0.0 (the default) on a Wi-Fi network the phone is on")
        }
        guard let code = QRCode(encoding: url) else {
            Console.warning("--qr: could not make a QR code of the viewer URL (too long for a QR code)")
            return
        }
        // The URL may carry the token: the code and the line are for the
        // person at this terminal, like the token itself.
        Console.out("Scan to watch in a browser on your phone, or open \(url)")
        for line in code.terminalLines() {
            Console.out(line)
        }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
