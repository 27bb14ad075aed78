import Envelope
import Foundation
import Logging

/// `--log-format json`: one JSON object per line on stderr, for journald,
/// Loki or jq. Members: `time` (ISO 8601, UTC), `level`, `label`, `message`,
/// `source`, then every metadata key as a member of its own (one that clashes
/// with those is prefixed with `meta.`). The viewers' token never appears:
/// the configured token and any `token=…` value are replaced by `REDACTED`.
struct JSONLogHandler: LogHandler {
    let label: String
    /// The token in force, scrubbed from every line.
    let secret: String?
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    // swiftlint:disable:next function_parameter_count
    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
             source: String, file: String, function: String, line: UInt) {
        var object: JSONObject = [
            "time": .string(Self.timestamp()),
            "level": .string(level.rawValue),
            "label": .string(label),
            "message": .string(scrub(message.description)),
            "source": .string(source),
        ]
        let merged = metadata.merging(explicit ?? [:]) { _, new in new }
        for key in merged.keys.sorted() {
            let name = object[key] == nil ? key : "meta.\(key)"
            object[name] = .string(scrub(merged[key]!.description))
        }
        let bytes = JSONValue.object(object).encoded() + [UInt8(ascii: "\n")]
        FileHandle.standardError.write(Data(bytes))
    }

    /// The text with the token, and any `token=` value, replaced by REDACTED.
    func scrub(_ text: String) -> String {
        var text = text
        if let secret, !secret.isEmpty { text = text.replacingOccurrences(of: secret, with: "REDACTED") }
        var searchFrom = text.startIndex
        while let range = text.range(of: "token=", range: searchFrom..<text.endIndex) {
            let end = text[range.upperBound...].firstIndex(where: { "& \"#".contains($0) }) ?? text.endIndex
            text.replaceSubrange(range.upperBound..<end, with: "REDACTED")
            searchFrom = text.index(range.upperBound, offsetBy: "REDACTED".count)
        }
        return text
    }

    private static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}
