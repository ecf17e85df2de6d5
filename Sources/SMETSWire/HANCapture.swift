import SMETSCore

/// HAN link DATA frames as the radio frames they stand for, in a pcap file (link type 195,
/// IEEE 802.15.4 with FCS): 802.15.4 MAC / Zigbee NWK / APS / the ZCL frame, as Wireshark decodes a
/// Zigbee Smart Energy capture. Pure: bytes in, bytes out; the caller writes them where it likes.
///
/// Short (16-bit) addresses are folded from the EUI-64s, so a capture needs no table of them and
/// one started late names every device as one started early does; the NWK header carries both
/// EUI-64s as well. MAC, NWK and APS counters are the encoder's own, so the same frames in the
/// same order give the same bytes.
/// The file format of a capture.
public enum CaptureFormat: String, Sendable, Hashable, CaseIterable {
    /// libpcap: a global header, then records (what `han.capture` has always written).
    case pcap
    /// pcapng: a Section Header Block, an Interface Description Block, then Enhanced Packet Blocks.
    case pcapng
}

public struct HANCaptureEncoder: Sendable {
    public static let linkType: UInt32 = 195  // LINKTYPE_IEEE802_15_4_WITHFCS
    public static let panID: UInt16 = 0x1A62
    public static let snapLength: UInt32 = 65_535

    private var macSequence: UInt8 = 0
    private var nwkSequence: UInt8 = 0
    private var apsCounter: UInt8 = 0

    public init() {}

    /// The pcap global header (microsecond timestamps, version 2.4).
    public static func fileHeader() -> [UInt8] {
        var writer = WireWriter()
        writer.u32le(0xA1B2_C3D4)
        writer.u16le(2); writer.u16le(4)
        writer.u32le(0); writer.u32le(0)  // GMT offset, accuracy
        writer.u32le(snapLength)
        writer.u32le(linkType)
        return writer.bytes
    }

    /// A short address for an EUI-64: its four 16-bit words folded, kept off the reserved 0xFFF8...0xFFFF.
    public static func shortAddress(_ eui: EUI64) -> UInt16 {
        let raw = eui.rawValue
        let folded = UInt16(truncatingIfNeeded: raw) ^ UInt16(truncatingIfNeeded: raw >> 16) ^ UInt16(truncatingIfNeeded: raw >> 32)
            ^ UInt16(truncatingIfNeeded: raw >> 48)
        return folded >= 0xFFF8 ? folded & 0x7FFF : folded
    }

    /// The start of a file in `format`: pcap's global header, or pcapng's Section Header Block and
    /// one Interface Description Block (802.15.4 with FCS, microsecond timestamps).
    public static func fileHeader(format: CaptureFormat) -> [UInt8] {
        switch format {
        case .pcap: return fileHeader()
        case .pcapng: return sectionHeaderBlock() + interfaceDescriptionBlock()
        }
    }

    /// One record in `format`: a pcap record, or a pcapng Enhanced Packet Block on interface 0.
    public mutating func record(_ data: HANData, micros: Int64, format: CaptureFormat) -> [UInt8] {
        switch format {
        case .pcap: return record(data, micros: micros)
        case .pcapng: return enhancedPacketBlock(radioFrame(data), micros: micros)
        }
    }

    // pcapng (draft-ietf-opsawg-pcapng): blocks of type, total length, body, total length again,
    // each a multiple of 4 bytes; written little-endian, which the byte-order magic announces.

    static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    static let interfaceDescriptionType: UInt32 = 0x0000_0001
    static let enhancedPacketType: UInt32 = 0x0000_0006

    static func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
        let padded = body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
        let total = UInt32(padded.count + 12)
        var writer = WireWriter(capacity: Int(total))
        writer.u32le(type); writer.u32le(total)
        writer.append(padded)
        writer.u32le(total)
        return writer.bytes
    }

    /// An option: code, length, value padded to 4 bytes.
    static func option(_ code: UInt16, _ value: [UInt8]) -> [UInt8] {
        var writer = WireWriter()
        writer.u16le(code); writer.u16le(UInt16(value.count))
        return writer.bytes + value + [UInt8](repeating: 0, count: (4 - value.count % 4) % 4)
    }

    static func sectionHeaderBlock() -> [UInt8] {
        var writer = WireWriter()
        writer.u32le(0x1A2B_3C4D)  // byte-order magic
        writer.u16le(1); writer.u16le(0)  // version 1.0
        writer.u64le(UInt64.max)  // section length: not given (-1), as a live capture cannot know it
        return block(sectionHeaderType, writer.bytes)
    }

    static func interfaceDescriptionBlock() -> [UInt8] {
        var writer = WireWriter()
        writer.u16le(UInt16(linkType)); writer.u16le(0)
        writer.u32le(snapLength)
        // if_name, and if_tsresol 6: timestamps count microseconds (also the default, said so Wireshark need not assume).
        let options = option(2, Array("smetsd-han".utf8)) + option(9, [6]) + option(0, [])
        return block(interfaceDescriptionType, writer.bytes + options)
    }

    func enhancedPacketBlock(_ frame: [UInt8], micros: Int64) -> [UInt8] {
        let stamp = UInt64(max(0, micros))
        var writer = WireWriter()
        writer.u32le(0)  // interface 0
        writer.u32le(UInt32(truncatingIfNeeded: stamp >> 32)); writer.u32le(UInt32(truncatingIfNeeded: stamp))
        writer.u32le(UInt32(frame.count)); writer.u32le(UInt32(frame.count))
        return Self.block(Self.enhancedPacketType, writer.bytes + frame)
    }

    /// One pcap record: the 802.15.4 frame for `data`, stamped `micros` since the Unix epoch.
    public mutating func record(_ data: HANData, micros: Int64) -> [UInt8] {
        let frame = radioFrame(data)
        var writer = WireWriter()
        let stamp = max(0, micros)
        writer.u32le(UInt32(truncatingIfNeeded: stamp / 1_000_000))
        writer.u32le(UInt32(stamp % 1_000_000))
        writer.u32le(UInt32(frame.count)); writer.u32le(UInt32(frame.count))
        return writer.bytes + frame
    }

    /// The PSDU with its FCS.
    public mutating func radioFrame(_ data: HANData) -> [UInt8] {
        macSequence &+= 1; nwkSequence &+= 1; apsCounter &+= 1
        let source = Self.shortAddress(data.source), destination = Self.shortAddress(data.destination)
        var writer = WireWriter()
        // MAC: data frame, PAN ID compression, short destination and source addresses, 802.15.4-2003.
        writer.u16le(0x0001 | 0x0040 | (0b10 << 10) | (0b10 << 14))
        writer.u8(macSequence)
        writer.u16le(Self.panID); writer.u16le(destination); writer.u16le(source)
        // NWK: data, Zigbee PRO (version 2), no security, both IEEE addresses present; radius 30.
        writer.u16le((2 << 2) | (1 << 11) | (1 << 12))
        writer.u16le(destination); writer.u16le(source)
        writer.u8(30); writer.u8(nwkSequence)
        writer.u64le(data.destination.rawValue); writer.u64le(data.source.rawValue)
        // APS: data, unicast, no security, no ack request.
        writer.u8(0x00)
        writer.u8(data.destinationEndpoint)
        writer.u16le(data.clusterID); writer.u16le(data.profileID)
        writer.u8(data.sourceEndpoint)
        writer.u8(apsCounter)
        var psdu = writer.bytes + data.zcl
        let fcs = Self.fcs(psdu)
        psdu.append(UInt8(fcs & 0xFF)); psdu.append(UInt8(fcs >> 8))
        return psdu
    }

    /// The 802.15.4 FCS: CRC-16/KERMIT (reflected 0x1021, initial 0), sent least significant byte first.
    public static func fcs(_ bytes: [UInt8]) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x8408 : crc >> 1 }
        }
        return crc
    }
}
