/// A device's IEEE EUI-64, the Device ID of GB smart metering.
///
/// Written most significant byte first with dashes (`00-DB-12-34-56-78-90-A1`), as the
/// DCC inventory and DUIS do. On the HAN wire it travels least significant byte first.
public struct EUI64: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// Parses `00-DB-12-34-56-78-90-A1`; also accepts `:` separators or 16 bare hex digits.
    public init?(_ text: String) {
        let digits = text.filter { $0 != "-" && $0 != ":" }
        guard digits.count == 16, digits.allSatisfy(\.isHexDigit), let value = UInt64(digits, radix: 16) else {
            return nil
        }
        self.rawValue = value
    }

    public static let zero = EUI64(0)

    public var description: String {
        (0..<8).map { index in
            let byte = UInt8(truncatingIfNeeded: rawValue >> (56 - 8 * UInt64(index)))
            return hexByte(byte)
        }.joined(separator: "-")
    }

    public static func < (lhs: EUI64, rhs: EUI64) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension EUI64: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = EUI64(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not an EUI-64; write it as 00-DB-12-34-56-78-90-A1")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

@inline(__always)
func hexByte(_ byte: UInt8) -> String {
    let digits: [Character] = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
}

/// Formats `value` as `width` uppercase hex digits, zero-padded.
public func upperHex<T: BinaryInteger>(_ value: T, width: Int) -> String {
    let text = String(value, radix: 16, uppercase: true)
    return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
}
