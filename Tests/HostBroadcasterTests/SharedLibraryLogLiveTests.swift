import Envelope
import Foundation
import HostBroadcaster
import Logging
import Testing
import ViewerClient

/// A host and a viewer in one process share libwebsockets' single log hook
/// (LibWebSocketsSupport's `LibWebSocketsLog`): starting a host must not silence
/// the viewer, whose certificate-error sentence is built from lws's lines.
@Suite("One lws log hook for host and viewer, live", .timeLimit(.minutes(1)))
struct SharedLibraryLogLiveTests {
    @Test func aViewerStillNamesTheCertificateProblemAfterAHostStartsInTheSameProcess() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("statecast-log-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (certificate, key) = try Self.selfSignedCertificate(in: folder)

        var tls = HostConfiguration()
        tls.bindAddress = "127.0.0.1"
        tls.port = 0
        tls.tlsCertificatePath = certificate
        tls.tlsKeyPath = key
        let secureHost = HostBroadcaster(configuration: tls, logger: Logger(label: "test.tls-host"))
        try secureHost.start(initial: Session(name: "tls"))
        defer { secureHost.stop() }

        // The viewer (no --ca: the self-signed certificate is untrusted) is
        // created first; a second host then starts in the same process.
        let viewer = try ViewerClient(url: "wss://127.0.0.1:\(secureHost.status.port)/", logger: Logger(label: "test.viewer"))
        var plain = HostConfiguration()
        plain.bindAddress = "127.0.0.1"
        plain.port = 0
        let otherHost = HostBroadcaster(configuration: plain, logger: Logger(label: "test.plain-host"))
        try otherHost.start(initial: Session(name: "plain"))
        defer { otherHost.stop() }

        viewer.start()
        #expect(eventually(20) { viewer.lastProblem != nil })
        await viewer.disconnect()
        let problem = try #require(viewer.lastProblem)
        #expect(problem.contains("signed by an unknown CA"), "got: \(problem)")
    }

    struct CertificateError: Error, CustomStringConvertible {
        var description: String { "openssl could not make a test certificate; check that /usr/bin/openssl works" }
    }

    /// A throwaway self-signed certificate for CN=localhost (made with `openssl`; nothing secret is committed).
    static func selfSignedCertificate(in folder: URL) throws -> (certificate: String, key: String) {
        let certificate = folder.appendingPathComponent("cert.pem").path
        let key = folder.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/CN=localhost",
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw CertificateError() }
        return (certificate, key)
    }
}
