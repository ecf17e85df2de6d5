import SMETSCore
import Testing
@testable import SMETSWire

@Suite("HAN capture (pcap)")
struct HANCaptureTests {
    static let device = EUI64(0x00DB_1234_5678_0005)
    static let rig = EUI64(0x000D_6F00_0ABC_DEF0)
    static let data = HANData(source: rig, destination: device, clusterID: 0x0000, sourceEndpoint: 3, destinationEndpoint: 1,
                              zcl: [0x00, 0x2A, 0x00, 0x00, 0x40])

    static func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }

    @Test("the file header: pcap 2.4, microseconds, link type 195 (802.15.4 with FCS), little-endian")
    func fileHeader() {
        let header = HANCaptureEncoder.fileHeader()
        #expect(header == [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 195, 0, 0, 0])
    }

    @Test("a record: time, lengths, then MAC / NWK / APS / ZCL and a correct FCS")
    func record() {
        var encoder = HANCaptureEncoder()
        let record = encoder.record(Self.data, micros: 1_800_000_000_123_456)
        #expect(Self.u32(record, 0) == 1_800_000_000 && Self.u32(record, 4) == 123_456)
        let frame = Array(record[16...])
        #expect(Self.u32(record, 8) == UInt32(frame.count) && Self.u32(record, 12) == UInt32(frame.count))
        // MAC 9 + NWK 8 + 16 + APS 8 + ZCL 5 + FCS 2
        #expect(frame.count == 9 + 24 + 8 + 5 + 2)
        #expect(Self.u16(frame, 0) == 0x8841 && frame[2] == 1 && Self.u16(frame, 3) == HANCaptureEncoder.panID)
        #expect(Self.u16(frame, 5) == HANCaptureEncoder.shortAddress(Self.device) && Self.u16(frame, 7) == HANCaptureEncoder.shortAddress(Self.rig))
        #expect(Self.u16(frame, 9) == 0x1808 && frame[15] == 30)
        #expect(Array(frame[17..<25]) == [0x05, 0x00, 0x78, 0x56, 0x34, 0x12, 0xDB, 0x00])  // destination EUI-64, LSB first
        #expect(Array(frame[33..<41]) == [0x00, 0x01, 0x00, 0x00, 0x09, 0x01, 0x03, 0x01])   // APS: data, ep 1, cluster, profile, ep 3, counter
        #expect(Array(frame[41..<46]) == Self.data.zcl)
        let fcs = HANCaptureEncoder.fcs(Array(frame.dropLast(2)))
        #expect(frame.suffix(2) == [UInt8(fcs & 0xFF), UInt8(fcs >> 8)])
    }

    @Test("the FCS is CRC-16/KERMIT (check value of '123456789' is 0x2189)")
    func fcs() {
        #expect(HANCaptureEncoder.fcs(Array("123456789".utf8)) == 0x2189)
        #expect(HANCaptureEncoder.fcs([]) == 0)
    }

    @Test("counters advance per record; the same frames in the same order give the same bytes")
    func deterministic() {
        var a = HANCaptureEncoder(), b = HANCaptureEncoder()
        let first = (0..<300).map { a.record(Self.data, micros: Int64($0)) }
        #expect(first == (0..<300).map { b.record(Self.data, micros: Int64($0)) })
        #expect(first[0][16 + 2] == 1 && first[1][16 + 2] == 2 && first[255][16 + 2] == 0)  // the MAC sequence wraps
    }

    @Test("short addresses: folded from the EUI-64, never reserved, different for the lab's look-alike IDs")
    func shortAddresses() {
        #expect(HANCaptureEncoder.shortAddress(EUI64(0x00DB_1234_5678_0005)) != HANCaptureEncoder.shortAddress(EUI64(0x00DB_1234_5679_0005)))
        #expect(HANCaptureEncoder.shortAddress(EUI64(0xFFFF_0000_0000_0000)) < 0xFFF8)
        #expect(HANCaptureEncoder.shortAddress(EUI64(UInt64.max)) < 0xFFF8)
    }

    /// The blocks of a pcapng byte stream, each checked for its framing: (type, body), or nil when a
    /// block's lengths disagree or are not a multiple of 4.
    static func blocks(_ bytes: [UInt8]) -> [(type: UInt32, body: [UInt8])]? {
        var blocks: [(type: UInt32, body: [UInt8])] = []
        var at = 0
        while at < bytes.count {
            guard at + 12 <= bytes.count else { return nil }
            let length = Int(u32(bytes, at + 4))
            guard length % 4 == 0, length >= 12, at + length <= bytes.count, u32(bytes, at + length - 4) == UInt32(length) else { return nil }
            blocks.append((u32(bytes, at), Array(bytes[(at + 8)..<(at + length - 4)])))
            at += length
        }
        return blocks
    }

    @Test("pcapng: a Section Header (magic, 1.0, length unknown), an Interface Description (195, snaplen, if_tsresol 6)")
    func pcapngHeader() throws {
        let blocks = try #require(Self.blocks(HANCaptureEncoder.fileHeader(format: .pcapng)))
        #expect(blocks.map(\.type) == [0x0A0D_0D0A, 1])
        let section = blocks[0].body
        #expect(Self.u32(section, 0) == 0x1A2B_3C4D && Self.u16(section, 4) == 1 && Self.u16(section, 6) == 0)
        #expect(Array(section[8..<16]) == [UInt8](repeating: 0xFF, count: 8))
        let interface = blocks[1].body
        #expect(Self.u16(interface, 0) == 195 && Self.u16(interface, 2) == 0 && Self.u32(interface, 4) == HANCaptureEncoder.snapLength)
        // Options after the fixed part: find if_tsresol (9) with value 6, and the end of options.
        var options: [UInt16: [UInt8]] = [:]
        var at = 8
        while at + 4 <= interface.count {
            let code = Self.u16(interface, at), length = Int(Self.u16(interface, at + 2))
            options[code] = Array(interface[(at + 4)..<(at + 4 + length)])
            at += 4 + (length + 3) / 4 * 4
            if code == 0 { break }
        }
        #expect(options[9] == [6] && options[0] == [] && options[2] == Array("smetsd-han".utf8))
        #expect(HANCaptureEncoder.fileHeader(format: .pcap) == HANCaptureEncoder.fileHeader())
    }

    @Test("pcapng: an Enhanced Packet Block holds the same radio frame as the pcap record, with a 64-bit microsecond time")
    func pcapngRecord() throws {
        var pcap = HANCaptureEncoder(), pcapng = HANCaptureEncoder()
        let record = pcap.record(Self.data, micros: 1_800_000_000_123_456)
        let block = pcapng.record(Self.data, micros: 1_800_000_000_123_456, format: .pcapng)
        let blocks = try #require(Self.blocks(block))
        #expect(blocks.count == 1 && blocks[0].type == 6)
        let body = blocks[0].body
        let micros = UInt64(Self.u32(body, 4)) << 32 | UInt64(Self.u32(body, 8))
        #expect(Self.u32(body, 0) == 0 && micros == 1_800_000_000_123_456)
        let length = Int(Self.u32(body, 12))
        #expect(length == record.count - 16 && Self.u32(body, 16) == UInt32(length))
        #expect(Array(body[20..<(20 + length)]) == Array(record[16...]))
        // Padding to 4 bytes is zero.
        #expect(body[(20 + length)...].allSatisfy { $0 == 0 } && block.count % 4 == 0)
    }
}
