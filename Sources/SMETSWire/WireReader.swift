import SMETSCore

/// A bounded, little-endian cursor over bytes from outside.
///
/// Every read checks the bound first and throws ``WireError/truncated(field:offset:needed:available:)``
/// instead of trapping, so parsers built on it are total by construction. Field names are
/// `StaticString`s so that the happy path never allocates; they become text only in an error.
public struct WireReader: Sendable {
    /// The bytes being read; indices are those of the underlying array.
    public let bytes: ArraySlice<UInt8>
    /// The index of the next byte to read, in `bytes`' index space.
    public private(set) var index: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    public init(_ bytes: [UInt8]) {
        self.init(bytes[...])
    }

    /// How far the reader has come, counted from the first byte it was given.
    public var offset: Int { index - bytes.startIndex }

    /// Bytes not yet read.
    public var remaining: Int { bytes.endIndex - index }

    public var isAtEnd: Bool { index >= bytes.endIndex }

    /// Throws unless `count` more bytes are there to read.
    @inlinable
    public func require(_ count: Int, _ field: StaticString) throws(WireError) {
        guard count >= 0, remaining >= count else {
            throw .truncated(field: "\(field)", offset: offset, needed: count, available: remaining)
        }
    }

    public mutating func u8(_ field: StaticString = "u8") throws(WireError) -> UInt8 {
        try require(1, field)
        let value = bytes[index]
        index += 1
        return value
    }

    public mutating func s8(_ field: StaticString = "s8") throws(WireError) -> Int8 {
        Int8(bitPattern: try u8(field))
    }

    public mutating func u16le(_ field: StaticString = "u16") throws(WireError) -> UInt16 {
        UInt16(truncatingIfNeeded: try unsigned(2, field))
    }

    public mutating func s16le(_ field: StaticString = "s16") throws(WireError) -> Int16 {
        Int16(bitPattern: try u16le(field))
    }

    /// A 24-bit unsigned integer, in the low bits of the result.
    public mutating func u24le(_ field: StaticString = "u24") throws(WireError) -> UInt32 {
        UInt32(truncatingIfNeeded: try unsigned(3, field))
    }

    /// A 24-bit two's-complement integer, sign-extended.
    public mutating func s24le(_ field: StaticString = "s24") throws(WireError) -> Int32 {
        // Shift the sign bit up to bit 31, then arithmetic-shift back down to extend it.
        Int32(bitPattern: try u24le(field) << 8) >> 8
    }

    public mutating func u32le(_ field: StaticString = "u32") throws(WireError) -> UInt32 {
        UInt32(truncatingIfNeeded: try unsigned(4, field))
    }

    public mutating func s32le(_ field: StaticString = "s32") throws(WireError) -> Int32 {
        Int32(bitPattern: try u32le(field))
    }

    /// A 48-bit unsigned integer, in the low bits of the result.
    public mutating func u48le(_ field: StaticString = "u48") throws(WireError) -> UInt64 {
        try unsigned(6, field)
    }

    public mutating func u64le(_ field: StaticString = "u64") throws(WireError) -> UInt64 {
        try unsigned(8, field)
    }

    /// An EUI-64 in Zigbee order: least significant byte first.
    public mutating func eui64(_ field: StaticString = "EUI-64") throws(WireError) -> EUI64 {
        EUI64(try u64le(field))
    }

    /// The next `count` bytes, without copying.
    public mutating func bytes(_ count: Int, _ field: StaticString = "bytes") throws(WireError) -> ArraySlice<UInt8> {
        try require(count, field)
        let slice = bytes[index..<(index + count)]
        index += count
        return slice
    }

    /// Everything not yet read; the reader is then at its end.
    public mutating func rest() -> ArraySlice<UInt8> {
        let slice = bytes[index...]
        index = bytes.endIndex
        return slice
    }

    /// A ZCL octet or character string body: a u8 length, then that many bytes.
    ///
    /// Length 0xFF is ZCL's "invalid" string, returned as nil; it has no bytes after it.
    public mutating func lengthPrefixed(_ field: StaticString = "string") throws(WireError) -> ArraySlice<UInt8>? {
        let length = try u8(field)
        if length == 0xFF { return nil }
        return try bytes(Int(length), field)
    }

    @inline(__always)
    private mutating func unsigned(_ width: Int, _ field: StaticString) throws(WireError) -> UInt64 {
        try require(width, field)
        var value: UInt64 = 0
        for shift in 0..<width {
            value |= UInt64(bytes[index + shift]) << (8 * UInt64(shift))
        }
        index += width
        return value
    }
}
