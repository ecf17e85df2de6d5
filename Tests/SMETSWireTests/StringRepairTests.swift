import Testing
@testable import SMETSWire

/// Invalid UTF-8 in a string field is repaired, and the repair still fits the field: the fuzz target
/// `zcl` found a 200-byte message of invalid bytes that, repaired with U+FFFD (3 bytes each), was cut
/// to 254 bytes when sent back, so a display's message read back differed from the one it was sent.
struct StringRepairTests {
    @Test("each invalid sequence becomes one '?', valid text is kept as it is")
    func repair() {
        #expect(ZCLString.decode([0x41, 0xFF, 0x42]) == "A?B")
        #expect(ZCLString.decode([0xC3, 0xA9, 0xE2, 0x82]) == "é?")
        #expect(ZCLString.decode(Array("£5 😀".utf8)) == "£5 😀")
        #expect(ZCLString.decode([UInt8]()) == "")
    }

    @Test("the repaired text is never longer than its bytes", arguments: [[UInt8](repeating: 0xFF, count: 254),
                                                                            [UInt8](repeating: 0xC3, count: 200),
                                                                            [0xF0, 0x9F, 0x98] + [UInt8](repeating: 0x80, count: 100)])
    func neverLonger(bytes: [UInt8]) {
        #expect(ZCLString.decode(bytes).utf8.count <= bytes.count)
    }

    @Test("a message of invalid bytes survives decode, encode, decode")
    func displayMessageRoundTrip() throws {
        var payload: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x3C, 0x00, 200]
        payload += [UInt8](repeating: 0xFF, count: 200)
        let message = try DisplayMessage(decoding: payload)
        #expect(try DisplayMessage(decoding: message.encoded()) == message)
        #expect(message.message == String(repeating: "?", count: 200))
    }
}
