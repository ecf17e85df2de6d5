import Testing
import SMETSRPC

@Suite("JSON serialisation")
struct JSONSerializationTests {
    @Test("compact output, sorted keys")
    func compact() {
        let value: JSONValue = ["b": [1, 2.5, "x", nil, true], "a": ["z": false, "y": [:]], "c": []]
        #expect(value.serialized() == #"{"a":{"y":{},"z":false},"b":[1,2.5,"x",null,true],"c":[]}"#)
        #expect(value.description == value.serialized())
    }

    @Test("strings are escaped as RFC 8259 requires")
    func escaping() {
        let value = JSONValue.string("q\" b\\ s/ \n\r\t\u{8}\u{C}\u{0}\u{1F}\u{7F} é😀\u{2028}")
        #expect(value.serialized() == #""q\" b\\ s/ \n\r\t\b\f\u0000\u001f"# + "\u{7F} é😀\u{2028}\"")
        #expect(JSONValue.object(["a\"b": 1]).serialized() == #"{"a\"b":1}"#)
    }

    @Test("numbers")
    func numbers() {
        #expect(JSONValue.int(.min).serialized() == "-9223372036854775808")
        #expect(JSONValue.double(5).serialized() == "5.0")
        #expect(JSONValue.double(1e100).serialized() == "1e+100")
        #expect(JSONValue.double(-0.0).serialized() == "-0.0")
        #expect(JSONValue.double(.nan).serialized() == "null")
        #expect(JSONValue.double(.infinity).serialized() == "null")
        #expect(JSONValue(UInt64.max) == .double(18446744073709551615.0))
        #expect(JSONValue(42 as Int) == .int(42))
    }

    @Test("pretty printing")
    func pretty() {
        let value: JSONValue = ["name": "x", "list": [1, ["k": nil]], "empty": [], "none": [:]]
        #expect(value.prettyPrinted() == """
            {
              "empty": [],
              "list": [
                1,
                {
                  "k": null
                }
              ],
              "name": "x",
              "none": {}
            }
            """)
        #expect(JSONValue.int(3).prettyPrinted() == "3")
    }

    @Test("random values survive a round trip, compact and pretty")
    func roundTrip() throws {
        var rng = SplitMix64(seed: 0x5EED)
        for _ in 0..<2_000 {
            let value = randomValue(depth: 4, using: &rng)
            #expect(try JSONValue.parse(value.serialized()) == value)
            #expect(try JSONValue.parse(value.serialized(sortedKeys: false)) == value)
            #expect(try JSONValue.parse(value.prettyPrinted()) == value)
        }
    }

    struct Reading: Codable, Equatable {
        var id: String
        var kwh: Double
        var count: Int
        var tags: [String]
        var note: String?
    }

    @Test("Codable bridge")
    func codable() throws {
        let reading = Reading(id: "00-DB-12-34-56-78-90-A1", kwh: 1.5, count: 3, tags: ["a"], note: nil)
        let value = try JSONValue(encoding: reading)
        #expect(value["id"] == "00-DB-12-34-56-78-90-A1")
        #expect(value["count"] == 3)
        #expect(value["kwh"]?.doubleValue == 1.5)
        #expect(try value.decode(Reading.self) == reading)
        #expect(throws: (any Error).self) { try JSONValue.object(["id": 1]).decode(Reading.self) }

        let nested: JSONValue = ["a": [1, 2.5, "s", nil, true, ["k": []]]]
        let viaCodable = try JSONValue(encoding: nested)
        #expect(viaCodable == nested)
        #expect(try nested.decode(JSONValue.self) == nested)
    }
}

@Suite("JSON parser totality")
struct JSONTotalityTests {
    static let alphabet: [UInt8] = Array(#"{}[]:,"\/ubfnrt0123456789-+.eE aZ"#.utf8) + [0x00, 0x0A, 0x1F, 0x80, 0xC3, 0xED, 0xFF]

    @Test("random byte strings parse or throw")
    func randomBytes() {
        var rng = SplitMix64(seed: 1)
        var parsed = 0
        for _ in 0..<20_000 {
            let count = Int.random(in: 0..<40, using: &rng)
            let bytes: [UInt8] = (0..<count).map { _ in
                Bool.random(using: &rng) ? Self.alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            if (try? JSONValue.parse(bytes)) != nil { parsed += 1 }
        }
        #expect(parsed >= 0)
    }

    @Test("mutations of valid documents parse or throw")
    func mutations() throws {
        var rng = SplitMix64(seed: 2)
        let seeds = [
            #"{"jsonrpc":"2.0","id":7,"method":"devices.list","params":{"type":"PPMID","limit":10}}"#,
            #"[1,-2.5e+3,"\u00e9\ud83d\ude00",true,false,null,{"a":[{}]}]"#,
            #"{"error":{"code":1001,"message":"no device","data":{"reason":"device_not_found"}}}"#,
        ]
        var mutated = 0
        for _ in 0..<10_000 {
            var bytes = Array(seeds.randomElement(using: &rng)!.utf8)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                guard !bytes.isEmpty else { break }
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(Self.alphabet.randomElement(using: &rng)!, at: at)
                case 3: bytes.removeSubrange(at...)
                default: bytes[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                }
            }
            do {
                let value = try JSONValue.parse(bytes)
                // Whatever parses must serialise to text that parses back to the same value.
                #expect(try JSONValue.parse(value.serialized()) == value)
            } catch {
                mutated += 1
            }
        }
        #expect(mutated > 0)
    }
}
