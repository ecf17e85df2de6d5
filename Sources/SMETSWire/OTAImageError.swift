import SMETSCore

/// Why bytes could not be read as an OTA upgrade file. Each case is one named reason, with a
/// stable identifier (``reason``) for scripts and the control API, and a sentence for people.
public enum OTAImageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file (or the total size its header declares) is over the configured limit.
    case imageTooLarge(size: Int, limit: Int)
    /// The first four bytes are not the file identifier 0x0BEEF11E (`1E F1 EE 0B`).
    case badMagic(found: UInt32)
    /// The header version is not 0x0100.
    case badHeaderVersion(found: UInt16)
    /// The header length field disagrees with the optional fields the field control announces.
    case headerLengthInconsistent(declared: UInt16, fieldControl: UInt16, expected: Int)
    /// The total image size in the header is not the size of the file.
    case totalSizeMismatch(declared: UInt32, fileSize: Int)
    /// `field` at `offset` needs `needed` bytes but only `available` remain.
    case truncated(field: String, offset: Int, needed: Int, available: Int)
    /// A sub-element's length runs past the end of the image.
    case subElementOverrun(tag: UInt16, offset: Int, length: UInt32, available: Int)
    /// A sub-element image holds no upgrade image (tag 0x0000), or more than one.
    case upgradeImageCount(found: Int)
    /// A GB image was required to carry a manufacturer signature and does not, or its block is not
    /// u16 big-endian length 0x0040 followed by 64 bytes.
    case badSignatureBlock(offset: Int, reason: String)

    /// A stable identifier of the reason: `bad_magic`, `truncated`, ...
    public var reason: String {
        switch self {
        case .imageTooLarge: "image_too_large"
        case .badMagic: "bad_magic"
        case .badHeaderVersion: "bad_header_version"
        case .headerLengthInconsistent: "header_length_inconsistent"
        case .totalSizeMismatch: "total_size_mismatch"
        case .truncated: "truncated"
        case .subElementOverrun: "sub_element_overrun"
        case .upgradeImageCount: "upgrade_image_count"
        case .badSignatureBlock: "bad_signature_block"
        }
    }

    public var description: String {
        switch self {
        case let .imageTooLarge(size, limit):
            "the image is \(size) bytes, over the limit of \(limit) (maxImageBytes)"
        case let .badMagic(found):
            "bad magic: the file identifier is 0x\(upperHex(found, width: 8)), not 0x0BEEF11E (bytes 1E F1 EE 0B); this is not an OTA upgrade file"
        case let .badHeaderVersion(found):
            "bad header version 0x\(upperHex(found, width: 4)); only 0x0100 is defined"
        case let .headerLengthInconsistent(declared, control, expected):
            "the header length is \(declared) but field control 0x\(upperHex(control, width: 4)) makes it \(expected)"
        case let .totalSizeMismatch(declared, fileSize):
            "the header's total image size is \(declared) bytes but the file is \(fileSize) bytes"
        case let .truncated(field, offset, needed, available):
            "truncated: \(field) at offset \(offset) needs \(needed) byte\(needed == 1 ? "" : "s"), only \(available) left"
        case let .subElementOverrun(tag, offset, length, available):
            "the sub-element with tag 0x\(upperHex(tag, width: 4)) at offset \(offset) claims \(length) bytes, only \(available) follow"
        case let .upgradeImageCount(found):
            "a sub-element image needs exactly one upgrade image (tag 0x0000), found \(found)"
        case let .badSignatureBlock(offset, reason):
            "bad signature block at offset \(offset): \(reason)"
        }
    }

    init(_ error: WireError) {
        switch error {
        case let .truncated(field, offset, needed, available):
            self = .truncated(field: field, offset: offset, needed: needed, available: available)
        case let .invalidValue(field, offset, _):
            self = .truncated(field: field, offset: offset, needed: 0, available: 0)
        case let .unsupportedDataType(_, offset):
            self = .truncated(field: "data", offset: offset, needed: 0, available: 0)
        }
    }
}

/// Runs a read of wire fields, turning its error into ``OTAImageError``.
@inline(__always)
func wire<T>(_ body: () throws(WireError) -> T) throws(OTAImageError) -> T {
    do { return try body() } catch { throw OTAImageError(error) }
}
