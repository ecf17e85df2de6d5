/// Why bytes from outside could not be read as the structure asked for.
///
/// Every parser in this module is total: for any input it returns a value or throws one of these.
/// Offsets count from the first byte of the input handed to the parser (for a cluster command,
/// the first byte of its payload), so a rig author can find the fault in a hex dump.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `field` at `offset` needs `needed` bytes but only `available` remain.
    case truncated(field: String, offset: Int, needed: Int, available: Int)
    /// `field` at `offset` holds a value the layout forbids.
    case invalidValue(field: String, offset: Int, reason: String)
    /// A ZCL data type byte at `offset` that this module cannot size, so nothing after it can be read.
    case unsupportedDataType(UInt8, offset: Int)

    public var description: String {
        switch self {
        case let .truncated(field, offset, needed, available):
            "\(field) at offset \(offset) needs \(needed) byte\(needed == 1 ? "" : "s"), only \(available) left"
        case let .invalidValue(field, offset, reason):
            "\(field) at offset \(offset) is invalid: \(reason)"
        case let .unsupportedDataType(type, offset):
            "unsupported ZCL data type \(hexByte(type)) at offset \(offset)"
        }
    }

    /// The offset the fault was found at.
    public var offset: Int {
        switch self {
        case let .truncated(_, offset, _, _), let .invalidValue(_, offset, _), let .unsupportedDataType(_, offset):
            offset
        }
    }
}

/// `0x` and two uppercase hex digits, for error descriptions.
func hexByte(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return "0x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
}
