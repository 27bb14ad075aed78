import Envelope
import Testing

@Suite("JSON numbers")
struct JSONNumberTests {
    @Test("Int64 extremes and values just above 2^53 round-trip exactly",
          arguments: [Int64.min, Int64.min + 1, -9_007_199_254_740_993, -1, 0, 1,
                      9_007_199_254_740_993, 9_007_199_254_740_992, Int64.max - 1, Int64.max])
    func integersRoundTrip(_ value: Int64) throws {
        let encoded = JSONValue.int(value).encoded()
        #expect(String(decoding: encoded, as: UTF8.self) == String(value))
        let decoded = try JSONValue(parsing: encoded)
        guard case let .int(back) = decoded else {
            Issue.record("expected .int, got \(decoded)")
            return
        }
        #expect(back == value)
    }

    @Test("integer text decodes to the exact Int64")
    func integerTextIsExact() throws {
        #expect(try parse("9007199254740993") == .int(9_007_199_254_740_993))
        #expect(try parse("-9223372036854775808") == .int(.min))
        #expect(try parse("9223372036854775807") == .int(.max))
        // 2^53 + 1 is not a Double, so `==` must not pass through Double.
        #expect(try parse("9007199254740993") != .int(9_007_199_254_740_992))
    }

    @Test("integers outside Int64 decode as .double")
    func integersBeyondInt64() throws {
        let above = try parse("9223372036854775808")
        guard case let .double(value) = above else {
            Issue.record("expected .double, got \(above)")
            return
        }
        #expect(value == 9_223_372_036_854_775_808.0)
        let below = try parse("-9223372036854775809")
        #expect(below.typeName == "number")
        let huge = try parse("123456789012345678901234567890")
        #expect(huge == .double(1.2345678901234568e29))
    }

    @Test("doubles round-trip bit-exactly",
          arguments: [0.1, 1e-7, Double.leastNonzeroMagnitude, 1.7976931348623157e308, -2.2250738585072014e-308,
                      0.30000000000000004, 1.5, -1.0, 1e16, 123456.789, 2.0 / 3.0, 1e22, 1e23, -0.0])
    func doublesRoundTrip(_ value: Double) throws {
        let decoded = try JSONValue(parsing: JSONValue.double(value).encoded())
        guard case let .double(back) = decoded else {
            Issue.record("expected .double, got \(decoded)")
            return
        }
        #expect(back.isBitwiseEqual(value), "\(value) came back as \(back)")
    }

    @Test("double text decodes correctly rounded")
    func doubleTextIsCorrectlyRounded() throws {
        let cases: [(String, Double)] = [
            ("0.1", 0.1), ("1e-7", 1e-7), ("1E-7", 1e-7), ("5e-324", .leastNonzeroMagnitude),
            ("1.7976931348623157e308", 1.7976931348623157e308), ("2.5", 2.5), ("-0.0", -0.0),
            ("0.000001234", 0.000001234), ("1.0", 1.0), ("1e+2", 100), ("12345678901234567890.5", 12345678901234567890.5),
            ("3.141592653589793238462643383279", 3.141592653589793), ("2.4703282292062328e-324", .leastNonzeroMagnitude),
            ("1e-400", 0),
        ]
        for (text, expected) in cases {
            let value = try parse(text)
            guard case let .double(number) = value else {
                Issue.record("\(text) should decode as .double, got \(value)")
                continue
            }
            #expect(number.isBitwiseEqual(expected), "\(text) decoded as \(number)")
        }
    }

    @Test("-0 keeps its sign")
    func negativeZero() throws {
        let value = try parse("-0")
        guard case let .double(number) = value else {
            Issue.record("expected .double(-0.0), got \(value)")
            return
        }
        #expect(number.isBitwiseEqual(-0.0))
    }

    @Test("encoded doubles keep a fraction or exponent, so they decode as .double")
    func doubleEncodingShape() {
        #expect(JSONValue.double(1).jsonText == "1.0")
        #expect(JSONValue.double(1.5).jsonText == "1.5")
        #expect(JSONValue.double(1e-7).jsonText == "1e-07")
        #expect(JSONValue.double(.nan).jsonText == "null")
        #expect(JSONValue.double(-.infinity).jsonText == "null")
    }
}
