import SMETSCore

/// HAN link DATA frames as the radio frames they stand for, in a pcap file (link type 195,
/// IEEE 802.15.4 with FCS): 802.15.4 MAC / Zigbee NWK / APS / the ZCL frame, as Wireshark decodes a
/// Zigbee Smart Energy capture. Pure: bytes in, bytes out; the caller writes them where it likes.
///
/// Short (16-bit) addresses are folded from the EUI-64s, so a capture needs no table of them and
/// one started late names every device as one started early does; the NWK header carries both
/// EUI-64s as well. MAC, NWK and APS counters are the encoder's own, so the same frames in the
/// same order give the same bytes.
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
