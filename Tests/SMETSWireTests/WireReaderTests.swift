import SMETSCore
import Testing
@testable import SMETSWire

@Suite("WireReader and WireWriter")
struct WireReaderTests {
    @Test("integers are little-endian at every width")
    func littleEndian() throws {
        var reader = WireReader(hex("01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 15"))
        #expect(try reader.u8() == 0x01)
        #expect(try reader.u16le() == 0x0302)
        #expect(try reader.u24le() == 0x06_0504)
        #expect(try reader.u32le() == 0x0A09_0807)
        #expect(try reader.u48le() == 0x10_0F0E_0D0C_0B)
        #expect(reader.offset == 16)
        #expect(reader.remaining == 5)
        #expect(Array(reader.rest()) == [0x11, 0x12, 0x13, 0x14, 0x15])
        #expect(reader.isAtEnd)
    }

    @Test("signed 24-bit values are sign-extended")
    func signExtension() throws {
        var reader = WireReader(hex("FF FF FF  00 00 80  FF FF 7F  24 FA FF"))
        #expect(try reader.s24le() == -1)
        #expect(try reader.s24le() == -8_388_608)
        #expect(try reader.s24le() == 8_388_607)
        #expect(try reader.s24le() == -1500)
    }

    @Test("an EUI-64 travels least significant byte first (han-link.md example)")
    func eui64WireOrder() throws {
        let device = try #require(EUI64("00-DB-12-34-56-78-90-A1"))
        var writer = WireWriter()
        writer.eui64(device)
        #expect(writer.bytes == hex("A1 90 78 56 34 12 DB 00"))
        var reader = WireReader(writer.bytes)
        #expect(try reader.eui64() == device)
    }

    @Test("a short read throws with field, offset and counts, and does not move")
    func truncation() {
        var reader = WireReader(hex("AA BB CC"))
        _ = try? reader.u8()
        #expect(throws: WireError.truncated(field: "file version", offset: 1, needed: 4, available: 2)) {
            try reader.u32le("file version")
        }
        #expect(reader.offset == 1)
        #expect(throws: WireError.truncated(field: "bytes", offset: 1, needed: -1, available: 2)) {
            try reader.bytes(-1)
        }
    }

    @Test("reading a slice counts offsets from the slice's start")
    func sliceOffsets() throws {
        let base = hex("00 00 00 05 06")
        var reader = WireReader(base[3...])
        #expect(try reader.u8() == 5)
        #expect(reader.offset == 1)
        let error = #expect(throws: WireError.self) { try reader.u16le("x") }
        #expect(error?.offset == 1)
        #expect(error?.description == "x at offset 1 needs 2 bytes, only 1 left")
    }

    @Test("length-prefixed strings: 0xFF is the invalid string")
    func lengthPrefixed() throws {
        var reader = WireReader(hex("02 41 42 FF 00 05 41"))
        #expect(try reader.lengthPrefixed().map(Array.init) == [0x41, 0x42])
        #expect(try reader.lengthPrefixed() == nil)
        #expect(try reader.lengthPrefixed().map(Array.init) == [])
        #expect(throws: WireError.self) { try reader.lengthPrefixed() }
    }

    @Test("the writer truncates to field width and cuts strings to 254 bytes")
    func writerLimits() {
        var writer = WireWriter()
        writer.u24le(0x1234_5678)
        writer.s24le(-2)
        writer.u48le(0xFFFF_0102_0304_0506)
        #expect(writer.bytes == hex("78 56 34  FE FF FF  06 05 04 03 02 01"))

        var strings = WireWriter()
        strings.lengthPrefixed([UInt8](repeating: 0x41, count: 300))
        #expect(strings.count == 255)
        #expect(strings.bytes.first == 254)
    }

    @Test("UTF-8 is cut on a character boundary")
    func utf8Cut() {
        // "é" is two bytes: a cut at 3 bytes keeps "aé", never half of the second "é".
        #expect(ZCLString.utf8("aéé", maxLength: 4) == Array("aé".utf8))
        #expect(ZCLString.utf8("aéé", maxLength: 5) == Array("aéé".utf8))
        #expect(ZCLString.utf8(String(repeating: "x", count: 300)).count == 254)
    }
}

@Suite("Zigbee UTC time")
struct ZigbeeTimeTests {
    @Test("the Zigbee epoch is 2000-01-01T00:00:00Z")
    func epoch() {
        #expect(ZigbeeTime.unixSeconds(fromZigbee: 0) == 946_684_800)
        #expect(ZigbeeTime.zigbee(fromUnixSeconds: 946_684_800) == 0)
        // 2025-05-09T12:00:00Z
        #expect(ZigbeeTime.zigbee(fromUnixSeconds: 1_746_792_000) == 800_107_200)
        #expect(ZigbeeTime.unixSeconds(fromZigbee: 800_107_200) == 1_746_792_000)
    }

    @Test("conversions saturate instead of trapping, and never yield the invalid time")
    func saturation() {
        #expect(ZigbeeTime.zigbee(fromUnixSeconds: .min) == 0)
        #expect(ZigbeeTime.zigbee(fromUnixSeconds: 0) == 0)
        #expect(ZigbeeTime.zigbee(fromUnixSeconds: .max) == ZigbeeTime.latest)
        #expect(ZigbeeTime.zigbee(fromUnixSeconds: 946_684_800 + 0xFFFF_FFFF) == ZigbeeTime.latest)
        #expect(ZigbeeTime.unixSeconds(fromZigbee: ZigbeeTime.invalid) == nil)
        let latestUnix: Int64 = 946_684_800 + 0xFFFF_FFFE
        #expect(ZigbeeTime.unixSeconds(fromZigbee: ZigbeeTime.latest) == latestUnix)
    }
}
