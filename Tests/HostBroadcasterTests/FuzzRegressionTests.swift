import Envelope
import Foundation
import HostBroadcaster
import Testing

/// Inputs found by the `session` fuzz target (Fuzz/README.md), and the file reading
/// that `SessionFile.load` does since the fix for the first of them.
@Suite struct SessionFileFuzzRegressionTests {
    /// A fresh directory for one test's files, removed afterwards by the caller.
    private static func makeDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "statecast-fuzz-regression-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    private static func loadError(_ path: String) -> SessionFileError? {
        do {
            _ = try SessionFile.load(path)
            return nil
        } catch {
            return error
        }
    }

    /// Fuzz artifact `session-crash-da39a3ee…` (the empty input): `Data(contentsOf:)`
    /// leaked a 4 KB buffer per read of an empty file (LeakSanitizer). The file is read
    /// many times so that, under `--sanitize=address`, a leak would be 400 KB, not noise.
    @Test func anEmptyFileIsAnEmptyInputErrorEveryTime() throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/empty.json"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))

        for _ in 0..<100 {
            let error = try #require(Self.loadError(path))
            #expect(error.line == 1 && error.column == 1)
            #expect(error.message.hasPrefix("the input is empty"))
            #expect(!error.isMissing)
        }
    }

    @Test func aFileLargerThanOneReadChunkIsReadWhole() throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/large.json"
        let text = String(repeating: "x", count: 200_000)
        let session = Session(name: "large", data: .string(text), config: ["k": 1])
        #expect(FileManager.default.createFile(atPath: path, contents: Data(session.encoded())))

        #expect(try SessionFile.load(path) == session)
    }

    @Test func aFIFOIsRefusedWithoutWaitingForAWriter() throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/session.fifo"
        #expect(mkfifo(path, 0o600) == 0)

        let error = try #require(Self.loadError(path))
        #expect(error.message == "cannot be read; check its permissions")
        #expect(!error.isMissing)
    }

    @Test func aDirectoryIsRefused() throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let error = try #require(Self.loadError(directory))
        #expect(error.message == "cannot be read; check its permissions")
        #expect(!error.isMissing)
    }

    @Test func aMissingFileIsReportedAsMissing() throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let error = try #require(Self.loadError(directory + "/absent.json"))
        #expect(error.isMissing)
        #expect(error.description == "\(directory)/absent.json: no such file; check the path")
    }
}
