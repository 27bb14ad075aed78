import Envelope
import Testing

@Suite("Awkward but valid input")
struct AwkwardInputTests {
    @Test("a 10 MB string decodes whole")
    func tenMegabyteString() throws {
        let big = String(repeating: "abcdefghij", count: 1_000_000)
        let value = try JSONValue(parsing: #"{"type":"config_update","payload":{"blob":""# + big + #""}}"#)
        #expect(value["payload"]?["blob"]?.stringValue?.utf8.count == 10_000_000)
        #expect(value["payload"]?["blob"]?.stringValue == big)
    }

    @Test("a 10 MB string with escapes and non-ASCII decodes whole")
    func tenMegabyteEscapedString() throws {
        let chunk = #"é\n\u00e9😀 "#  // 15 bytes; decodes to é, newline, é, 😀, space
        let text = "\"" + String(repeating: chunk, count: 700_000) + "\""
        #expect(text.utf8.count > 10_000_000)
        let value = try JSONValue(parsing: text)
        #expect(value.stringValue == String(repeating: "é\né😀 ", count: 700_000))
    }

    @Test("a leading UTF-8 byte-order mark is skipped")
    func leadingBOM() throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + utf8(#"{"type":"config_update","payload":{"a":1}}"#)
        let envelope = try Envelope(decoding: bytes)
        #expect(envelope.payload == .configUpdate(["a": 1]))
    }

    @Test("a BOM alone is empty input")
    func onlyBOM() {
        #expect(jsonError([0xEF, 0xBB, 0xBF])?.kind == .emptyInput)
    }

    @Test("duplicate keys: the last value wins at the first key's position")
    func duplicateKeys() throws {
        let value = try parse(#"{"a":1,"b":2,"a":3}"#)
        #expect(value.objectValue.map { Array($0.keys) } == ["a", "b"])
        #expect(value["a"] == 3)
        #expect(value.jsonText == #"{"a":3,"b":2}"#)
        let envelope = try Envelope(decoding: utf8(#"{"type":"hello","type":"config_update","payload":{}}"#))
        #expect(envelope.type == "config_update")
    }

    @Test("unknown envelope members are ignored, wherever they are")
    func unknownMembers() throws {
        let envelope = try Envelope(decoding: utf8(
            #"{"foo":1,"type":"config_update","bar":{"x":[1,2]},"payload":{"speed":2},"seq":5,"baz":null}"#
        ))
        #expect(envelope == Envelope(.configUpdate(["speed": 2]), seq: 5))
    }

    @Test("whitespace is allowed between every token")
    func whitespaceEverywhere() throws {
        let text = " \r\n\t{ \"type\" :\n\"session_update\" ,\t\"seq\" : 7 , \"payload\" : { \"name\" : \"n\" , "
            + "\"data\" : [ 1 , { } , [ ] ] , \"config\" : { \"k\" : true } } } \n\r\t "
        let envelope = try Envelope(decoding: utf8(text))
        #expect(envelope == Envelope(.sessionUpdate(Session(name: "n", data: [1, [:], []], config: ["k": true])), seq: 7))
    }

    @Test("nesting up to the limit is fine")
    func nestingAtLimit() throws {
        let depth = JSONValue.maximumNestingDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try parse(text)
        var levels = 1
        while case let .array(elements) = value, let first = elements.first {
            value = first
            levels += 1
        }
        #expect(levels == depth)
        #expect(jsonError(utf8("[" + text + "]"))?.kind == .tooDeep(limit: depth))
    }

    @Test("null seq and epoch count as absent")
    func nullSeqAndEpoch() throws {
        let envelope = try Envelope(decoding: utf8(#"{"type":"config_update","seq":null,"epoch":null,"payload":{}}"#))
        #expect(envelope.seq == nil)
        #expect(envelope.epoch == nil)
    }

    @Test("an integral seq written as a double is accepted")
    func integralDoubleSeq() throws {
        let envelope = try Envelope(decoding: utf8(#"{"type":"config_update","seq":41.0,"payload":{}}"#))
        #expect(envelope.seq == 41)
    }
}

@Suite("Error positions")
struct ErrorPositionTests {
    @Test("line and column point at the offending character on a multi-line input")
    func multiLine() throws {
        let text = """
        {
          "name": "demo",
          "config": {"speed": 1.5 x}
        }
        """
        let error = try #require(jsonError(utf8(text)))
        #expect(error.kind == .unexpectedCharacter(UInt8(ascii: "x")))
        #expect(error.line == 3)
        #expect(error.column == 27)
        #expect(error.offset == Array(text.utf8).firstIndex(of: UInt8(ascii: "x")))
        #expect(error.description == "line 3, column 27: expected ',' or '}' after an object member, found 'x'")
    }

    @Test("columns count characters, not bytes; CRLF is one line break")
    func unicodeColumnsAndCRLF() throws {
        let text = "{\"a\": 1,\r\n \"é😀\": tru}"
        let error = try #require(jsonError(utf8(text)))
        #expect(error.kind == .unexpectedCharacter(UInt8(ascii: "}")))
        #expect(error.line == 2)
        #expect(error.column == 11)
    }

    @Test("unexpected end points just past the last byte")
    func unexpectedEnd() throws {
        let error = try #require(jsonError(utf8("[1,\n2")))
        #expect(error.kind == .unexpectedEnd)
        #expect(error.line == 2)
        #expect(error.column == 2)
        #expect(error.description == "line 2, column 2: the input ends too early; expected ',' or ']' after an array element")
    }

    @Test("an unterminated string points at its opening quote")
    func unterminatedStringPosition() throws {
        let error = try #require(jsonError(utf8("{\n  \"a\": \"open")))
        #expect(error.kind == .unterminatedString)
        #expect((error.line, error.column) == (2, 8))
    }

    @Test("invalid UTF-8 points at the bad byte")
    func invalidUTF8Position() throws {
        let error = try #require(jsonError([0x22, 0x61, 0x62, 0xFE, 0x22]))
        #expect(error.kind == .invalidUTF8)
        #expect(error.offset == 3)
        #expect(error.column == 4)
    }

    @Test("a leading BOM does not count as a column")
    func bomIsNotAColumn() throws {
        let error = try #require(jsonError([0xEF, 0xBB, 0xBF] + utf8("[x]")))
        #expect(error.offset == 4)
        #expect((error.line, error.column) == (1, 2))
    }

    @Test("the depth error points at the first bracket too many")
    func depthPosition() throws {
        let error = try #require(jsonError(utf8(String(repeating: "[", count: 100_000))))
        #expect(error.kind == .tooDeep(limit: 512))
        #expect(error.offset == 512)
    }
}

@Suite("Error messages")
struct ErrorMessageTests {
    @Test("messages name the character found and what was expected", arguments: [
        ("é", "line 1, column 1: expected a JSON value, found 'é' (U+00E9)"),
        ("[1 2]", "line 1, column 4: expected ',' or ']' after an array element, found '2'"),
        ("{\"a\":1} ]", "line 1, column 9: unexpected ']' after the end of the JSON value; remove it (one value per input)"),
        ("[\u{1}]", "line 1, column 2: expected a JSON value, found U+0001"),
        ("", "line 1, column 1: the input is empty; expected a JSON value such as {} or []"),
    ])
    func messages(_ input: String, _ message: String) throws {
        let error = try #require(jsonError(utf8(input)))
        #expect(error.description == message)
    }
}
