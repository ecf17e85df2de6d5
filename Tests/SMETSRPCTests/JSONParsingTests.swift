import Testing
import SMETSRPC

@Suite("JSON parsing")
struct JSONParsingTests {
    @Test("scalars and containers")
    func basics() throws {
        #expect(try JSONValue.parse("null") == .null)
        #expect(try JSONValue.parse("true") == .bool(true))
        #expect(try JSONValue.parse("false") == .bool(false))
        #expect(try JSONValue.parse("0") == .int(0))
        #expect(try JSONValue.parse("-12") == .int(-12))
        #expect(try JSONValue.parse(#""hi""#) == .string("hi"))
        #expect(try JSONValue.parse("[]") == .array([]))
        #expect(try JSONValue.parse("{}") == .object([:]))
        #expect(try JSONValue.parse(" \t\r\n[1, \"a\" ,{ \"k\" : [ null ] } ] \n") == [1, "a", ["k": [nil]]])
        #expect(try JSONValue.parse(#"{"a":1,"a":2}"#) == ["a": 2], "duplicate keys keep the last value")
    }

    @Test("accessors")
    func accessors() throws {
        let value = try JSONValue.parse(#"{"s":"x","i":7,"d":2.0,"f":2.5,"b":true,"n":null,"a":[1,2],"o":{"k":1}}"#)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["i"]?.intValue == 7)
        #expect(value["d"]?.intValue == 2, "an integral double reads as an int")
        #expect(value["f"]?.intValue == nil)
        #expect(value["i"]?.doubleValue == 7.0)
        #expect(value["b"]?.boolValue == true)
        #expect(value["n"]?.isNull == true)
        #expect(value["a"]?[1] == 2)
        #expect(value["a"]?[2] == nil)
        #expect(value["a"]?[-1] == nil)
        #expect(value["o"]?.objectValue == ["k": 1])
        #expect(value["missing"] == nil)
        #expect(value[0] == nil)
        #expect(JSONValue.int(1)["k"] == nil)
        #expect(JSONValue.double(1e30).intValue == nil)
    }

    @Test("string escapes", arguments: [
        (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{C}\n\r\t"),
        (#""\u0041\u00e9\u20AC""#, "Aé€"),
        (#""\u0000""#, "\u{0}"),
        (#""\ud83d\ude00""#, "😀"),
        (#""\uD834\uDD1E x""#, "𝄞 x"),
        (#""plain é 😀 ""#, "plain é 😀 "),
        (#""a\nb""#, "a\nb"),
    ])
    func escapes(text: String, expected: String) throws {
        #expect(try JSONValue.parse(text) == .string(expected))
    }

    @Test("bad strings", arguments: [
        (#""\ud83d""#, "unpaired high surrogate"),
        (#""\ud83dx""#, "high surrogate then text"),
        (#""\ud83d\u0041""#, "high surrogate then non-surrogate"),
        (#""\ude00""#, "lone low surrogate"),
        (#""\x""#, "unknown escape"),
        (#""\u12""#, "short escape"),
        (#""\u12G4""#, "non-hex escape"),
        (#""\U0041""#, "upper-case U"),
        ("\"a\u{1}b\"", "raw control character"),
        ("\"a\nb\"", "raw newline"),
        (#""abc"#, "unterminated"),
        (#""abc\"#, "unterminated after backslash"),
        ("'a'", "single quotes"),
    ])
    func badStrings(text: String, why: String) {
        #expect(parseFailure(text) != nil, "\(why)")
    }

    @Test("invalid UTF-8 is refused")
    func invalidUTF8() {
        #expect(parseFailure(bytes: [0x22, 0xC3, 0x28, 0x22])?.reason == .invalidUTF8)
        #expect(parseFailure(bytes: [0x22, 0xED, 0xA0, 0x80, 0x22])?.reason == .invalidUTF8, "encoded surrogate")
        #expect(parseFailure(bytes: [0x22, 0x5C, 0x6E, 0xFF, 0x22])?.reason == .invalidUTF8, "slow path too")
        #expect(parseFailure(bytes: [0xEF, 0xBB, 0xBF, 0x31]) != nil, "a byte order mark is not JSON")
    }

    @Test("numbers", arguments: [
        ("9223372036854775807", JSONValue.int(.max)),
        ("-9223372036854775808", .int(.min)),
        ("9223372036854775808", .double(9223372036854775808.0)),
        ("-9223372036854775809", .double(-9223372036854775809.0)),
        ("123456789012345678901234567890", .double(1.2345678901234568e29)),
        ("-0", .int(0)),
        ("0.0", .double(0)),
        ("1.5", .double(1.5)),
        ("-1.25e-3", .double(-0.00125)),
        ("1E2", .double(100)),
        ("1e+2", .double(100)),
        ("2.5E-2", .double(0.025)),
        ("1e-400", .double(0)),
        ("0.1", .double(0.1)),
    ])
    func numbers(text: String, expected: JSONValue) throws {
        #expect(try JSONValue.parse(text) == expected)
    }

    @Test("bad numbers", arguments: [
        "01", "-01", "-", "1.", ".5", "+1", "1e", "1e+", "--1", "1.e3", "0x10", "1_000", "Infinity", "NaN",
        "-Infinity", "1e400", "-1e400", "1.0.0", "00",
    ])
    func badNumbers(text: String) {
        #expect(parseFailure(text) != nil)
    }

    @Test("literals and structure errors", arguments: [
        "", " ", "tru", "nul", "True", "nulll", "[", "]", "{", "}", "[1,]", "[,1]", "[1 2]", "{\"a\"}",
        "{\"a\":}", "{\"a\":1,}", "{a:1}", "{\"a\" 1}", "{1:2}", "[1}", "{\"a\":1]", "/* c */1", "1 // c",
    ])
    func structure(text: String) {
        #expect(parseFailure(text) != nil)
    }

    @Test("trailing garbage is refused, trailing whitespace is not")
    func trailing() throws {
        #expect(parseFailure("1 2")?.reason == .trailingCharacters)
        #expect(parseFailure("{}x")?.reason == .trailingCharacters)
        #expect(parseFailure("[]]")?.reason == .trailingCharacters)
        #expect(parseFailure("null\0")?.reason == .trailingCharacters)
        #expect(parseFailure("\"a\"\"b\"")?.reason == .trailingCharacters)
        #expect(try JSONValue.parse("{} \n\r\t ") == .object([:]))
    }

    @Test("errors carry the offset")
    func offsets() {
        #expect(parseFailure("[1, x]") == JSONParseError(offset: 4, reason: .unexpectedByte(0x78, expected: "a value")))
        #expect(parseFailure("[1,")?.reason == .unexpectedEnd)
        #expect(parseFailure("[1,")?.offset == 3)
        #expect(parseFailure("  01")?.offset == 2)
        #expect(parseFailure(#"["\q"]"#) == JSONParseError(offset: 2, reason: .invalidEscape))
        #expect(parseFailure("[1, x]")?.description == "unexpected 'x', expected a value at offset 4")
    }

    @Test("nesting is refused beyond the limit")
    func depth() {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(parseFailure(ok) == nil)
        #expect(parseFailure(tooDeep) == JSONParseError(offset: 64, reason: .tooDeep(limit: 64)))
        let objects = String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(parseFailure(objects)?.reason == .tooDeep(limit: 64))
        #expect(parseFailure("[[1]]", limits: JSONLimits(maxDepth: 1, maxBytes: 100))?.reason == .tooDeep(limit: 1))
        #expect(parseFailure("7", limits: JSONLimits(maxDepth: 0, maxBytes: 100)) == nil)
    }

    @Test("very deep input with a huge limit does not exhaust the parser's stack")
    func deepWithoutRecursion() throws {
        // The parser keeps open containers on its own stacks; only the finished value is nested
        // (and destroying a value is recursive), so the accepted value here stays modest.
        let unlimited = JSONLimits(maxDepth: .max, maxBytes: .max)
        let unclosed = String(repeating: "[", count: 500_000)
        #expect(parseFailure(unclosed, limits: unlimited)?.reason == .unexpectedEnd)
        let mismatched = String(repeating: "[", count: 500_000) + "}"
        #expect(parseFailure(mismatched, limits: unlimited) != nil)
        let text = String(repeating: "[", count: 1_000) + String(repeating: "]", count: 1_000)
        #expect(try JSONValue.parse(text, limits: unlimited).arrayValue?.count == 1)
    }

    @Test("input is refused beyond the size limit")
    func size() {
        let limits = JSONLimits(maxDepth: 64, maxBytes: 8)
        #expect(parseFailure("[1,2,3]", limits: limits) == nil)
        #expect(parseFailure("[1,2,3,4]", limits: limits)?.reason == .tooLarge(limit: 8))
        #expect(JSONLimits.default.maxBytes == 1 << 20)
        #expect(JSONLimits.default.maxDepth == 64)
    }

    @Test("any collection of bytes can be parsed")
    func collections() throws {
        let bytes: [UInt8] = Array(#"{"k":[1,2]}"#.utf8)
        #expect(try JSONValue.parse(bytes) == ["k": [1, 2]])
        #expect(try JSONValue.parse(bytes[...]) == ["k": [1, 2]])
        #expect(try JSONValue.parse(bytes.reversed().reversed()) == ["k": [1, 2]])
        #expect(try JSONValue.parse(Set<UInt8>([0x31])) == 1, "a non-contiguous collection")
    }
}
