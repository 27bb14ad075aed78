import Envelope
import Testing

@Suite("JSON strings and Unicode")
struct JSONStringTests {
    @Test("escapes decode to the characters they name")
    func escapes() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{C}\n\r\t"))
        #expect(try parse(#""\u0041\u00e9\u20AC\u0000""#) == .string("Aé€\u{0}"))
    }

    @Test("a surrogate pair decodes to one scalar")
    func surrogatePair() throws {
        let value = try parse(#""\uD83D\uDE00 \ud834\udd1e""#)
        #expect(value == .string("😀 𝄞"))
        #expect(value.stringValue?.unicodeScalars.count == 3)
    }

    @Test("raw non-ASCII UTF-8 decodes and encodes as raw UTF-8")
    func rawUTF8() throws {
        let text = "héllo wörld – 日本語 😀"
        let value = try parse("\"\(text)\"")
        #expect(value == .string(text))
        #expect(value.encoded() == utf8("\"\(text)\""))
    }

    @Test("the encoder escapes quotes, backslashes and control characters only")
    func encoderEscapes() {
        let value = JSONValue.string("q\"b\\n\nt\tr\rb\u{8}f\u{C}z\u{0}u\u{1F}/é\u{7F}")
        #expect(value.jsonText == #""q\"b\\n\nt\tr\rb\bf\fz\u0000u\u001f/é"# + "\u{7F}\"")
    }

    @Test("every string round-trips through encode and decode",
          arguments: ["", "plain", "with \"quotes\" and \\", "line\nbreak", "\u{0}\u{1}\u{1F}",
                      "emoji 😀👩‍👩‍👧", "\u{2028}\u{2029}", "mixed é\n\"😀\"\\"])
    func stringRoundTrip(_ text: String) throws {
        let decoded = try JSONValue(parsing: JSONValue.string(text).encoded())
        #expect(decoded == .string(text))
    }

    @Test("escaped and unescaped forms of a string decode equal")
    func escapedAndRaw() throws {
        #expect(try parse(#""caf\u00e9 \u65e5""#) == parse("\"café 日\""))
    }

    @Test("the String entry point and the byte entry points agree")
    func entryPoints() throws {
        let text = #"{"a":[1,2.5,"x"],"b":null}"#
        let expected = try JSONValue(parsing: text)
        #expect(try JSONValue(parsing: utf8(text)) == expected)
        #expect(try JSONValue(parsing: utf8("  " + text)[2...]) == expected)  // ArraySlice
        let viaRawBuffer = try utf8(text).withUnsafeBytes { buffer throws(JSONError) in
            try JSONValue(parsing: buffer)
        }
        #expect(viaRawBuffer == expected)
        // A non-contiguous collection takes the copying path.
        #expect(try JSONValue(parsing: text.utf8.lazy.map { $0 }) == expected)
    }
}
