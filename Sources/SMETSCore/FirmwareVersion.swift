/// A firmware version: a u32 on the wire, 8 uppercase hex digits in the CPL and DUIS (`0102030A`).
public struct FirmwareVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public init?(hex: String) {
        let trimmed = hex.hasPrefix("0x") || hex.hasPrefix("0X") ? String(hex.dropFirst(2)) : hex
        guard (1...8).contains(trimmed.count), trimmed.allSatisfy(\.isHexDigit),
              let value = UInt32(trimmed, radix: 16) else { return nil }
        self.rawValue = value
    }

    public var hex: String { upperHex(rawValue, width: 8) }
    public var description: String { hex }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension FirmwareVersion: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = FirmwareVersion(hex: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a firmware version; write 8 hex digits, e.g. 0102030A")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}
