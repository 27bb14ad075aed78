import Envelope
import Testing

/// One input that must be refused, and the specific error it must produce.
struct MalformedCase: Sendable, CustomTestStringConvertible {
    enum Expected: Sendable {
        /// Not JSON: the envelope decoder wraps this JSON error kind in `.notJSON`.
        case json(JSONError.Kind)
        /// Valid JSON but not a valid envelope.
        case envelope(EnvelopeError.Kind)
        /// A payload of the wrong shape (the reason text is checked to contain this fragment).
        case payloadShape(containing: String)
    }

    var name: String
    var bytes: [UInt8]
    var expected: Expected

    init(_ name: String, _ text: String, _ expected: Expected) {
        self.init(name, bytes: Array(text.utf8), expected)
    }

    init(_ name: String, bytes: [UInt8], _ expected: Expected) {
        self.name = name
        self.bytes = bytes
        self.expected = expected
    }

    var testDescription: String { name }
}

private let deepArrays = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
private let deepObjects = String(repeating: #"{"a":"#, count: 100_000) + "1" + String(repeating: "}", count: 100_000)

let malformedCorpus: [MalformedCase] = [
    // Empty and truncated input
    MalformedCase("empty input", "", .json(.emptyInput)),
    MalformedCase("only whitespace", " \n\t ", .json(.emptyInput)),
    MalformedCase("truncated object", #"{"type":"config_update","payload":{"speed":1.5"#, .json(.unexpectedEnd)),
    MalformedCase("truncated after key", #"{"type""#, .json(.unexpectedEnd)),
    MalformedCase("truncated array", "[1,2", .json(.unexpectedEnd)),
    MalformedCase("truncated literal", "tru", .json(.unexpectedEnd)),
    MalformedCase("unterminated string", #"{"type":"config_upd"#, .json(.unterminatedString)),
    MalformedCase("unterminated string ending in backslash", #""abc\"#, .json(.unterminatedString)),
    // Structure
    MalformedCase("100 000-deep arrays", deepArrays, .json(.tooDeep(limit: 512))),
    MalformedCase("100 000-deep objects", deepObjects, .json(.tooDeep(limit: 512))),
    MalformedCase("trailing garbage", #"{"type":"config_update","payload":{}} x"#, .json(.trailingGarbage)),
    MalformedCase("two values", "{} {}", .json(.trailingGarbage)),
    MalformedCase("trailing comma in array", "[1,]", .json(.unexpectedCharacter(UInt8(ascii: "]")))),
    MalformedCase("trailing comma in object", #"{"a":1,}"#, .json(.unexpectedCharacter(UInt8(ascii: "}")))),
    MalformedCase("missing colon", #"{"a" 1}"#, .json(.unexpectedCharacter(UInt8(ascii: "1")))),
    MalformedCase("single-quoted string", "{'type':1}", .json(.unexpectedCharacter(UInt8(ascii: "'")))),
    MalformedCase("unquoted key", "{type:1}", .json(.unexpectedCharacter(UInt8(ascii: "t")))),
    MalformedCase("comment", "// hi\n{}", .json(.unexpectedCharacter(UInt8(ascii: "/")))),
    MalformedCase("misspelled literal", "nul1", .json(.unexpectedCharacter(UInt8(ascii: "1")))),
    MalformedCase("BOM in the middle", "[\u{FEFF}1]", .json(.unexpectedCharacter(0xEF))),
    // Numbers
    MalformedCase("lone minus", "-", .json(.invalidNumber)),
    MalformedCase("leading zero", "01", .json(.invalidNumber)),
    MalformedCase("negative leading zero", "[-01]", .json(.invalidNumber)),
    MalformedCase("fraction without digits", "1.", .json(.invalidNumber)),
    MalformedCase("no integer part", ".5", .json(.invalidNumber)),
    MalformedCase("leading plus", "+1", .json(.invalidNumber)),
    MalformedCase("exponent without digits", "1e", .json(.invalidNumber)),
    MalformedCase("exponent sign without digits", "[1e+]", .json(.invalidNumber)),
    MalformedCase("minus then letter", "-x", .json(.invalidNumber)),
    MalformedCase("number out of range", "1e400", .json(.numberOutOfRange)),
    MalformedCase("negative number out of range", #"{"payload":-1.5e99999}"#, .json(.numberOutOfRange)),
    MalformedCase("huge integer literal", String(repeating: "9", count: 400), .json(.numberOutOfRange)),
    MalformedCase("NaN", "NaN", .json(.nonFiniteNumber)),
    MalformedCase("Infinity", #"{"a":Infinity}"#, .json(.nonFiniteNumber)),
    MalformedCase("-Infinity", "[-Infinity]", .json(.nonFiniteNumber)),
    // Strings
    MalformedCase("unescaped newline in string", "\"a\nb\"", .json(.controlCharacterInString)),
    MalformedCase("unescaped tab in string", "\"a\tb\"", .json(.controlCharacterInString)),
    MalformedCase("bad escape \\x", #""\x41""#, .json(.invalidEscape)),
    MalformedCase("short \\u escape", #""\u12G4""#, .json(.invalidEscape)),
    MalformedCase("lone high surrogate", #""\uD83D""#, .json(.loneSurrogate)),
    MalformedCase("high surrogate then a letter", #""\uD83Dx""#, .json(.loneSurrogate)),
    MalformedCase("lone low surrogate", #""\uDE00""#, .json(.loneSurrogate)),
    MalformedCase("two high surrogates", #""\uD83D\uD83D""#, .json(.loneSurrogate)),
    MalformedCase("invalid UTF-8 byte in string", bytes: Array(#"{"type":""#.utf8) + [0xFF] + Array(#""}"#.utf8), .json(.invalidUTF8)),
    MalformedCase("truncated UTF-8 sequence", bytes: [0x22, 0x61, 0xC3, 0x22], .json(.invalidUTF8)),
    MalformedCase("overlong UTF-8 encoding", bytes: [0x22, 0xC0, 0xAF, 0x22], .json(.invalidUTF8)),
    MalformedCase("UTF-8 encoded surrogate", bytes: [0x22, 0xED, 0xA0, 0x80, 0x22], .json(.invalidUTF8)),
    MalformedCase("invalid UTF-8 before an escape", bytes: [0x22, 0xE2, 0x82, 0x5C, 0x6E, 0x22], .json(.invalidUTF8)),
    MalformedCase("invalid UTF-8 outside strings", bytes: [0x5B, 0xFF, 0x5D], .json(.invalidUTF8)),
    // Envelope shape
    MalformedCase("envelope is an array", #"[{"type":"config_update"}]"#, .envelope(.notAnObject)),
    MalformedCase("envelope is a string", #""session_update""#, .envelope(.notAnObject)),
    MalformedCase("envelope without type", #"{"payload":{}}"#, .envelope(.missingType)),
    MalformedCase("type not a string", #"{"type":1,"payload":{}}"#, .envelope(.typeNotAString)),
    MalformedCase("type null", #"{"type":null,"payload":{}}"#, .envelope(.typeNotAString)),
    MalformedCase("unknown type", #"{"type":"hello","payload":{}}"#, .envelope(.unknownType("hello"))),
    MalformedCase("type differs in case", #"{"type":"Session_Update","payload":{}}"#, .envelope(.unknownType("Session_Update"))),
    MalformedCase("envelope without payload", #"{"type":"config_update","seq":3}"#, .envelope(.missingPayload)),
    MalformedCase("seq is a string", #"{"type":"config_update","seq":"41","payload":{}}"#, .envelope(.invalidSeq)),
    MalformedCase("seq is fractional", #"{"type":"config_update","seq":41.5,"payload":{}}"#, .envelope(.invalidSeq)),
    MalformedCase("epoch is a number", #"{"type":"config_update","epoch":7,"payload":{}}"#, .envelope(.invalidEpoch)),
    MalformedCase("config_update payload is an array", #"{"type":"config_update","payload":[1]}"#,
                  .payloadShape(containing: "config_update must be an object, not an array")),
    MalformedCase("session_update payload is a string", #"{"type":"session_update","payload":"s"}"#,
                  .payloadShape(containing: "must be an object, not a string")),
    MalformedCase("session without name", #"{"type":"session_update","payload":{"data":{}}}"#,
                  .payloadShape(containing: "no \"name\"")),
    MalformedCase("session name not a string", #"{"type":"session_update","payload":{"name":5}}"#,
                  .payloadShape(containing: "\"name\" must be a string, not an integer")),
    MalformedCase("session config not an object", #"{"type":"session_update","payload":{"name":"n","config":[]}}"#,
                  .payloadShape(containing: "\"config\" must be an object, not an array")),
    MalformedCase("session metadata null", #"{"type":"session_update","payload":{"name":"n","metadata":null}}"#,
                  .payloadShape(containing: "\"metadata\" must be an object, not null")),
]

@Suite("Malformed input")
struct MalformedInputTests {
    @Test("the corpus is large enough")
    func corpusSize() {
        #expect(malformedCorpus.count >= 25)
    }

    @Test("each malformed input fails with its specific error", arguments: malformedCorpus)
    func rejects(_ input: MalformedCase) {
        guard let error = envelopeError(input.bytes) else {
            Issue.record("\(input.name) decoded without error")
            return
        }
        switch input.expected {
        case let .json(kind):
            #expect(error.kind == .notJSON(jsonError(input.bytes)!), "envelope error must wrap the JSON error")
            guard case let .notJSON(jsonError) = error.kind else {
                Issue.record("expected a JSON error \(kind), got \(error)")
                return
            }
            #expect(jsonError.kind == kind, "\(jsonError)")
        case let .envelope(kind):
            #expect(error.kind == kind, "\(error)")
        case let .payloadShape(fragment):
            guard case let .wrongPayloadShape(reason) = error.kind else {
                Issue.record("expected wrongPayloadShape, got \(error)")
                return
            }
            #expect(reason.contains(fragment), "\(reason)")
        }
        // Every error reads as one sentence: non-empty, a single line.
        #expect(!error.description.isEmpty)
        #expect(!error.description.contains("\n"))
    }
}
