import SMETSCore

/// Appends little-endian fields to a byte buffer, the inverse of ``WireReader``.
///
/// Writers never fail: a value wider than its field is truncated to the field's width
/// (the caller chose the width), and strings longer than ZCL allows are cut (see ``lengthPrefixed(_:)``).
public struct WireWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    public mutating func u8(_ value: UInt8) { bytes.append(value) }
    public mutating func s8(_ value: Int8) { bytes.append(UInt8(bitPattern: value)) }
    public mutating func u16le(_ value: UInt16) { unsigned(UInt64(value), 2) }
    public mutating func s16le(_ value: Int16) { unsigned(UInt64(UInt16(bitPattern: value)), 2) }
    /// The low 24 bits of `value`.
    public mutating func u24le(_ value: UInt32) { unsigned(UInt64(value), 3) }
    /// The low 24 bits of `value`'s two's complement; values outside -2^23..<2^23 wrap.
    public mutating func s24le(_ value: Int32) { unsigned(UInt64(UInt32(bitPattern: value)), 3) }
    public mutating func u32le(_ value: UInt32) { unsigned(UInt64(value), 4) }
    public mutating func s32le(_ value: Int32) { unsigned(UInt64(UInt32(bitPattern: value)), 4) }
    /// The low 48 bits of `value`.
    public mutating func u48le(_ value: UInt64) { unsigned(value, 6) }
    public mutating func u64le(_ value: UInt64) { unsigned(value, 8) }

    /// An EUI-64 in Zigbee order: least significant byte first.
    public mutating func eui64(_ value: EUI64) { unsigned(value.rawValue, 8) }

    public mutating func append(_ other: some Sequence<UInt8>) { bytes.append(contentsOf: other) }

    /// A ZCL octet or character string: u8 length, then the bytes; nil writes the invalid string 0xFF.
    ///
    /// ZCL strings hold at most 254 bytes (0xFF means invalid); longer input is cut to 254.
    public mutating func lengthPrefixed(_ value: some Collection<UInt8>) {
        let kept = value.prefix(ZCLString.maxLength)
        bytes.append(UInt8(truncatingIfNeeded: kept.count))
        bytes.append(contentsOf: kept)
    }

    /// Writes ZCL's invalid string, a lone 0xFF.
    public mutating func invalidString() { bytes.append(0xFF) }

    /// Drops what was written after the first `count` bytes (a record that turned out not to fit).
    public mutating func truncate(to count: Int) {
        guard count < bytes.count else { return }
        bytes.removeSubrange(max(0, count)...)
    }

    /// A ZCL character string of `text`'s UTF-8, cut to 254 bytes on a character boundary.
    public mutating func charString(_ text: String) {
        let utf8 = text.utf8
        // Most strings fit: their UTF-8 goes straight in, with no walk over characters.
        if utf8.count <= ZCLString.maxLength {
            bytes.append(UInt8(truncatingIfNeeded: utf8.count))
            bytes.append(contentsOf: utf8)
        } else {
            lengthPrefixed(ZCLString.utf8(text))
        }
    }

    @inline(__always)
    private mutating func unsigned(_ value: UInt64, _ width: Int) {
        for shift in 0..<width {
            bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(shift))))
        }
    }
}

/// Limits and helpers for ZCL's u8-length-prefixed strings.
public enum ZCLString {
    /// The longest string ZCL can carry: 0xFF is reserved for "invalid".
    public static let maxLength = 254

    /// The UTF-8 of `text`, cut to at most `maxLength` bytes on a character boundary,
    /// so that a cut string still decodes to the text it began with.
    public static func utf8(_ text: String, maxLength: Int = ZCLString.maxLength) -> [UInt8] {
        // Walking characters (grapheme breaking) is slow; only a string too long needs it.
        if text.utf8.count <= maxLength { return Array(text.utf8) }
        var result: [UInt8] = []
        result.reserveCapacity(min(text.utf8.count, maxLength))
        for character in text {
            let encoded = character.utf8
            guard result.count + encoded.count <= maxLength else { break }
            result.append(contentsOf: encoded)
        }
        return result
    }

    /// Text from string bytes off the wire: valid UTF-8 as it is; each invalid sequence becomes one
    /// "?". The repaired text is never longer than the bytes it came from, so it fits the field it was
    /// read from when it is sent back, unchanged (U+FFFD, three bytes for as few as one, could push a
    /// full field past its limit, and the cut would change the text: a display's message read back
    /// would no longer be the message it was sent).
    public static func decode(_ bytes: some Collection<UInt8>) -> String {
        if let valid = String(validating: bytes, as: UTF8.self) { return valid }
        var scalars = String.UnicodeScalarView()
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        while true {
            switch parser.parseScalar(from: &iterator) {
            case let .valid(encoded): scalars.append(Unicode.UTF8.decode(encoded))
            case .error: scalars.append("?")
            case .emptyInput: return String(scalars)
            }
        }
    }
}
