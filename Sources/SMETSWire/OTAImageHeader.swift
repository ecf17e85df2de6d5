import SMETSCore

/// The header of a Zigbee OTA upgrade file (ZCL 11.4.2), as `gb-smart-metering.md` tabulates it.
///
/// All fields little-endian. The optional fields follow the fixed 56 bytes in the order of their
/// field control bits, and `headerLength` counts them: a header is exactly
/// `56 + (bit0 ? 1 : 0) + (bit1 ? 8 : 0) + (bit2 ? 4 : 0)` bytes long.
public struct OTAImageHeader: Hashable, Sendable {
    /// `1E F1 EE 0B` on the wire.
    public static let fileIdentifier: UInt32 = 0x0BEE_F11E
    /// The only header version this module reads or writes.
    public static let currentHeaderVersion: UInt16 = 0x0100
    /// The fixed part: identifier through total image size.
    public static let fixedLength = 56
    /// The header string is 32 bytes, NUL-padded.
    public static let headerStringLength = 32
    /// Zigbee PRO.
    public static let zigbeeProStackVersion: UInt16 = 0x0002
    /// Manufacturer code meaning "any manufacturer".
    public static let wildcardManufacturerCode: UInt16 = 0xFFFF
    /// Image types 0xFFC0...0xFFFF are reserved (0xFFFF is the wildcard of queries).
    public static let reservedImageTypes: ClosedRange<UInt16> = 0xFFC0...0xFFFF

    /// Field control bit 0: security credential version present.
    public static let securityCredentialVersionBit: UInt16 = 0b001
    /// Field control bit 1: upgrade file destination (a device-specific file) present.
    public static let upgradeFileDestinationBit: UInt16 = 0b010
    /// Field control bit 2: minimum and maximum hardware version present.
    public static let hardwareVersionsBit: UInt16 = 0b100

    /// Minimum and maximum hardware versions the image is for, inclusive.
    public struct HardwareVersions: Hashable, Sendable {
        public var minimum: UInt16
        public var maximum: UInt16
        public init(minimum: UInt16, maximum: UInt16) { self.minimum = minimum; self.maximum = maximum }
        public func contains(_ version: UInt16) -> Bool { minimum <= version && version <= maximum }
    }

    public var manufacturerCode: UInt16
    public var imageType: UInt16
    public var fileVersion: UInt32
    public var zigbeeStackVersion: UInt16
    /// The 32 header string bytes as they travel (NUL-padded); see ``headerString``.
    public var headerStringBytes: [UInt8]
    /// The whole file's size, header included.
    public var totalImageSize: UInt32
    public var securityCredentialVersion: UInt8?
    /// The one device a device-specific file is for.
    public var upgradeFileDestination: EUI64?
    public var hardwareVersions: HardwareVersions?
    /// Field control bits 3-15: reserved, kept so that a parsed header encodes to the same bytes.
    public var reservedFieldControlBits: UInt16

    public init(
        manufacturerCode: UInt16, imageType: UInt16, fileVersion: UInt32,
        zigbeeStackVersion: UInt16 = OTAImageHeader.zigbeeProStackVersion, headerString: String = "",
        totalImageSize: UInt32 = 0, securityCredentialVersion: UInt8? = nil, upgradeFileDestination: EUI64? = nil,
        hardwareVersions: HardwareVersions? = nil
    ) {
        self.manufacturerCode = manufacturerCode
        self.imageType = imageType
        self.fileVersion = fileVersion
        self.zigbeeStackVersion = zigbeeStackVersion
        self.headerStringBytes = Self.padded(headerString)
        self.totalImageSize = totalImageSize
        self.securityCredentialVersion = securityCredentialVersion
        self.upgradeFileDestination = upgradeFileDestination
        self.hardwareVersions = hardwareVersions
        self.reservedFieldControlBits = 0
    }

    /// The header string up to its first NUL, as UTF-8 (invalid sequences replaced).
    public var headerString: String {
        get { String(decoding: headerStringBytes.prefix { $0 != 0 }, as: UTF8.self) }
        set { headerStringBytes = Self.padded(newValue) }
    }

    /// The field control the optional fields call for, with the reserved bits kept.
    public var fieldControl: UInt16 {
        reservedFieldControlBits & ~Self.knownFieldControlBits
            | (securityCredentialVersion == nil ? 0 : Self.securityCredentialVersionBit)
            | (upgradeFileDestination == nil ? 0 : Self.upgradeFileDestinationBit)
            | (hardwareVersions == nil ? 0 : Self.hardwareVersionsBit)
    }

    /// The header's length in bytes, optional fields included.
    public var headerLength: Int { Self.expectedLength(fieldControl: fieldControl) }

    /// The header length a field control implies.
    public static func expectedLength(fieldControl: UInt16) -> Int {
        fixedLength
            + (fieldControl & securityCredentialVersionBit != 0 ? 1 : 0)
            + (fieldControl & upgradeFileDestinationBit != 0 ? 8 : 0)
            + (fieldControl & hardwareVersionsBit != 0 ? 4 : 0)
    }

    /// Whether the image is for every manufacturer's devices.
    public var isWildcardManufacturer: Bool { manufacturerCode == Self.wildcardManufacturerCode }

    /// Writes the header as it travels. `totalImageSize` is written as it is: the builders of
    /// ``OTAImage`` set it.
    public func encode(into writer: inout WireWriter) {
        writer.u32le(Self.fileIdentifier)
        writer.u16le(Self.currentHeaderVersion)
        writer.u16le(UInt16(truncatingIfNeeded: headerLength))
        writer.u16le(fieldControl)
        writer.u16le(manufacturerCode)
        writer.u16le(imageType)
        writer.u32le(fileVersion)
        writer.u16le(zigbeeStackVersion)
        writer.append(Self.padded(bytes: headerStringBytes))
        writer.u32le(totalImageSize)
        if let securityCredentialVersion { writer.u8(securityCredentialVersion) }
        if let upgradeFileDestination { writer.eui64(upgradeFileDestination) }
        if let hardwareVersions {
            writer.u16le(hardwareVersions.minimum)
            writer.u16le(hardwareVersions.maximum)
        }
    }

    public func encoded() -> [UInt8] {
        var writer = WireWriter(capacity: headerLength)
        encode(into: &writer)
        return writer.bytes
    }

    /// Reads a header from the start of `bytes`, checking identifier, version and length; leaves
    /// the reader just after the header. The total size is not compared with anything here.
    public init(decoding reader: inout WireReader) throws(OTAImageError) {
        let identifier = try wire { () throws(WireError) in try reader.u32le("file identifier") }
        guard identifier == Self.fileIdentifier else { throw .badMagic(found: identifier) }
        let version = try wire { () throws(WireError) in try reader.u16le("header version") }
        guard version == Self.currentHeaderVersion else { throw .badHeaderVersion(found: version) }
        let declaredLength = try wire { () throws(WireError) in try reader.u16le("header length") }
        let control = try wire { () throws(WireError) in try reader.u16le("field control") }
        let expected = Self.expectedLength(fieldControl: control)
        guard Int(declaredLength) == expected else {
            throw .headerLengthInconsistent(declared: declaredLength, fieldControl: control, expected: expected)
        }
        self = try wire { () throws(WireError) in
            var header = OTAImageHeader(
                manufacturerCode: try reader.u16le("manufacturer code"), imageType: try reader.u16le("image type"),
                fileVersion: try reader.u32le("file version"), zigbeeStackVersion: try reader.u16le("zigbee stack version"))
            header.headerStringBytes = Array(try reader.bytes(Self.headerStringLength, "header string"))
            header.totalImageSize = try reader.u32le("total image size")
            if control & Self.securityCredentialVersionBit != 0 {
                header.securityCredentialVersion = try reader.u8("security credential version")
            }
            if control & Self.upgradeFileDestinationBit != 0 {
                header.upgradeFileDestination = try reader.eui64("upgrade file destination")
            }
            if control & Self.hardwareVersionsBit != 0 {
                let minimum = try reader.u16le("minimum hardware version")
                let maximum = try reader.u16le("maximum hardware version")
                header.hardwareVersions = HardwareVersions(minimum: minimum, maximum: maximum)
            }
            header.reservedFieldControlBits = control & ~Self.knownFieldControlBits
            return header
        }
    }

    static let knownFieldControlBits = securityCredentialVersionBit | upgradeFileDestinationBit | hardwareVersionsBit

    static func padded(_ text: String) -> [UInt8] {
        padded(bytes: ZCLString.utf8(text, maxLength: headerStringLength))
    }

    static func padded(bytes: [UInt8]) -> [UInt8] {
        let kept = Array(bytes.prefix(headerStringLength))
        return kept + [UInt8](repeating: 0, count: headerStringLength - kept.count)
    }
}
