import SMETSCore

/// The ZCL data types this module can read and write, by their type byte.
public enum ZCLDataType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case bool = 0x10
    case bitmap8 = 0x18
    case bitmap16 = 0x19
    case bitmap32 = 0x1B
    case uint8 = 0x20
    case uint16 = 0x21
    case uint24 = 0x22
    case uint32 = 0x23
    case uint48 = 0x25
    case int8 = 0x28
    case int16 = 0x29
    case int24 = 0x2A
    case int32 = 0x2B
    case enum8 = 0x30
    case enum16 = 0x31
    case octetString = 0x41
    case charString = 0x42
    case utc = 0xE2
    case ieeeAddress = 0xF0

    /// Bytes of a value of this type, nil for the length-prefixed strings.
    public var fixedSize: Int? {
        switch self {
        case .bool, .bitmap8, .uint8, .int8, .enum8: 1
        case .bitmap16, .uint16, .int16, .enum16: 2
        case .uint24, .int24: 3
        case .bitmap32, .uint32, .int32, .utc: 4
        case .uint48: 6
        case .ieeeAddress: 8
        case .octetString, .charString: nil
        }
    }

    public var description: String {
        switch self {
        case .bool: "bool"
        case .bitmap8: "bitmap8"
        case .bitmap16: "bitmap16"
        case .bitmap32: "bitmap32"
        case .uint8: "uint8"
        case .uint16: "uint16"
        case .uint24: "uint24"
        case .uint32: "uint32"
        case .uint48: "uint48"
        case .int8: "int8"
        case .int16: "int16"
        case .int24: "int24"
        case .int32: "int32"
        case .enum8: "enum8"
        case .enum16: "enum16"
        case .octetString: "octstr"
        case .charString: "string"
        case .utc: "UTC"
        case .ieeeAddress: "EUI64"
        }
    }
}

/// An attribute value with its ZCL type.
///
/// Strings are nil for ZCL's invalid string (length byte 0xFF). Integers narrower than their Swift
/// carrier (24- and 48-bit) are truncated to their width on encoding.
public enum ZCLValue: Hashable, Sendable {
    case bool(Bool)
    case bitmap8(UInt8)
    case bitmap16(UInt16)
    case bitmap32(UInt32)
    case uint8(UInt8)
    case uint16(UInt16)
    case uint24(UInt32)
    case uint32(UInt32)
    case uint48(UInt64)
    case int8(Int8)
    case int16(Int16)
    case int24(Int32)
    case int32(Int32)
    case enum8(UInt8)
    case enum16(UInt16)
    case octetString([UInt8]?)
    /// Text; decoding repairs invalid UTF-8 (``ZCLString/decode(_:)``), encoding cuts to 254 bytes on a
    /// character boundary.
    case charString(String?)
    /// Seconds since 2000-01-01T00:00:00Z; 0xFFFFFFFF is "invalid" (see ``ZigbeeTime``).
    case utc(UInt32)
    case ieeeAddress(EUI64)

    public var dataType: ZCLDataType {
        switch self {
        case .bool: .bool
        case .bitmap8: .bitmap8
        case .bitmap16: .bitmap16
        case .bitmap32: .bitmap32
        case .uint8: .uint8
        case .uint16: .uint16
        case .uint24: .uint24
        case .uint32: .uint32
        case .uint48: .uint48
        case .int8: .int8
        case .int16: .int16
        case .int24: .int24
        case .int32: .int32
        case .enum8: .enum8
        case .enum16: .enum16
        case .octetString: .octetString
        case .charString: .charString
        case .utc: .utc
        case .ieeeAddress: .ieeeAddress
        }
    }

    /// Writes the value alone, without its type byte.
    public func encode(into writer: inout WireWriter) {
        switch self {
        case let .bool(value): writer.u8(value ? 1 : 0)
        case let .bitmap8(value), let .uint8(value), let .enum8(value): writer.u8(value)
        case let .bitmap16(value), let .uint16(value), let .enum16(value): writer.u16le(value)
        case let .uint24(value): writer.u24le(value)
        case let .bitmap32(value), let .uint32(value), let .utc(value): writer.u32le(value)
        case let .uint48(value): writer.u48le(value)
        case let .int8(value): writer.s8(value)
        case let .int16(value): writer.s16le(value)
        case let .int24(value): writer.s24le(value)
        case let .int32(value): writer.s32le(value)
        case let .octetString(value):
            if let value { writer.lengthPrefixed(value) } else { writer.invalidString() }
        case let .charString(value):
            if let value { writer.charString(value) } else { writer.invalidString() }
        case let .ieeeAddress(value): writer.eui64(value)
        }
    }

    /// The value alone, without its type byte.
    public func encoded() -> [UInt8] {
        var writer = WireWriter(capacity: dataType.fixedSize ?? 16)
        encode(into: &writer)
        return writer.bytes
    }

    /// Writes the type byte, then the value: the form of attribute records.
    public func encodeTyped(into writer: inout WireWriter) {
        writer.u8(dataType.rawValue)
        encode(into: &writer)
    }

    /// Reads a value of a known type.
    ///
    /// - Throws: ``WireError/truncated(field:offset:needed:available:)`` when short;
    ///   ``WireError/invalidValue(field:offset:reason:)`` for a boolean other than 0 or 1.
    public init(decoding type: ZCLDataType, from reader: inout WireReader) throws(WireError) {
        switch type {
        case .bool:
            let offset = reader.offset
            let raw = try reader.u8("bool")
            switch raw {
            case 0: self = .bool(false)
            case 1: self = .bool(true)
            default:
                throw .invalidValue(field: "bool", offset: offset, reason: "\(hexByte(raw)) is neither 0 nor 1")
            }
        case .bitmap8: self = .bitmap8(try reader.u8("bitmap8"))
        case .bitmap16: self = .bitmap16(try reader.u16le("bitmap16"))
        case .bitmap32: self = .bitmap32(try reader.u32le("bitmap32"))
        case .uint8: self = .uint8(try reader.u8("uint8"))
        case .uint16: self = .uint16(try reader.u16le("uint16"))
        case .uint24: self = .uint24(try reader.u24le("uint24"))
        case .uint32: self = .uint32(try reader.u32le("uint32"))
        case .uint48: self = .uint48(try reader.u48le("uint48"))
        case .int8: self = .int8(try reader.s8("int8"))
        case .int16: self = .int16(try reader.s16le("int16"))
        case .int24: self = .int24(try reader.s24le("int24"))
        case .int32: self = .int32(try reader.s32le("int32"))
        case .enum8: self = .enum8(try reader.u8("enum8"))
        case .enum16: self = .enum16(try reader.u16le("enum16"))
        case .octetString: self = .octetString(try reader.lengthPrefixed("octet string").map(Array.init))
        case .charString:
            self = .charString(try reader.lengthPrefixed("character string").map(ZCLString.decode))
        case .utc: self = .utc(try reader.u32le("UTC time"))
        case .ieeeAddress: self = .ieeeAddress(try reader.eui64("IEEE address"))
        }
    }

    /// Reads a type byte, then a value of that type.
    ///
    /// - Throws: also ``WireError/unsupportedDataType(_:offset:)`` for a type this module cannot size.
    public init(decodingTypedFrom reader: inout WireReader) throws(WireError) {
        let offset = reader.offset
        let raw = try reader.u8("data type")
        guard let type = ZCLDataType(rawValue: raw) else { throw .unsupportedDataType(raw, offset: offset) }
        try self.init(decoding: type, from: &reader)
    }
}
