import Foundation

/// What the host checks in a `--tls-key` file before handing it to libwebsockets.
enum TLSKeyFile {
    /// Whether the PEM key is encrypted (PKCS #8 `ENCRYPTED PRIVATE KEY`, or a
    /// traditional key with `Proc-Type: 4,ENCRYPTED`). OpenSSL would ask for
    /// the passphrase on the terminal; the host refuses such a key up front.
    static func isEncrypted(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        // A PEM key's markers sit at its start; 64 KiB is far more than any key.
        let head = (try? handle.read(upToCount: 64 * 1024)) ?? Data()
        let text = String(decoding: head, as: UTF8.self)
        return text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED")
    }
}
