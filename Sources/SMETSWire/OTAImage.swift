import SMETSCore

/// A sub-element of a generic Zigbee OTA image: u16 tag, u32 length, data (all little-endian).
public struct OTASubElement: Hashable, Sendable {
    /// The tag of the upgrade image itself.
    public static let upgradeImageTag: UInt16 = 0x0000

    public var tag: UInt16
    public var data: [UInt8]
    public init(tag: UInt16, data: [UInt8]) { self.tag = tag; self.data = data }
}

/// An OTA upgrade file in one of the two forms the emulator meets.
///
/// - ``Payload/subElements(_:)``: a generic Zigbee image; the upgrade image is the data of the one
///   sub-element with tag 0x0000.
/// - ``Payload/manufacturerImage(_:signature:)``: a GB firmware image as DUIS carries it (service
///   requests 11.1, 11.4): the header, then the raw Manufacturer Image, then optionally the
///   manufacturer signature block, u16 **big-endian** length 0x0040 and a 64-byte ECDSA P-256
///   signature (raw r||s).
///
/// In both forms the header's total image size is the size of the whole file, signature block
/// included. The signature covers ``signedContent``: the header bytes followed by the
/// Manufacturer Image (not the signature block, which cannot sign itself).
public struct OTAImage: Hashable, Sendable {
    public enum Payload: Hashable, Sendable {
        case subElements([OTASubElement])
        case manufacturerImage([UInt8], signature: [UInt8]?)
    }

    /// Which form an image is, or is to be read as.
    public enum Format: String, Hashable, Sendable, CaseIterable {
        /// Header, then sub-elements (tag 0x0000 the upgrade image).
        case zigbee
        /// Header, then the raw Manufacturer Image, then an optional signature block.
        case gb
    }

    /// The length of a manufacturer signature (raw r||s of ECDSA P-256) and of its block.
    public static let signatureLength = 64
    public static let signatureBlockLength = 2 + signatureLength

    public var header: OTAImageHeader
    public var payload: Payload

    public init(header: OTAImageHeader, payload: Payload) {
        self.header = header
        self.payload = payload
    }

    public var format: Format {
        if case .subElements = payload { return .zigbee }
        return .gb
    }

    /// The firmware itself: the GB Manufacturer Image, or the data of the tag 0x0000 sub-element.
    /// Its SHA-256 is the image's identity (the hash Activate Firmware names).
    public var manufacturerImage: [UInt8] {
        switch payload {
        case let .manufacturerImage(image, _): image
        case let .subElements(elements): elements.first { $0.tag == OTASubElement.upgradeImageTag }?.data ?? []
        }
    }

    /// The manufacturer signature of a GB image, if it carries one.
    public var signature: [UInt8]? {
        if case let .manufacturerImage(_, signature) = payload { return signature }
        return nil
    }

    /// What the manufacturer signs: the header as it travels, then the Manufacturer Image.
    public var signedContent: [UInt8] { header.encoded() + manufacturerImage }

    /// The size of the whole file these parts make.
    public var encodedSize: Int {
        switch payload {
        case let .manufacturerImage(image, signature):
            header.headerLength + image.count + (signature.map { 2 + $0.count } ?? 0)
        case let .subElements(elements):
            header.headerLength + elements.reduce(0) { $0 + 6 + $1.data.count }
        }
    }

    /// The file's bytes. The total image size is written as the header holds it; the builders
    /// (``gb(header:manufacturerImage:)``, ``zigbee(header:subElements:)``) set it.
    public func encoded() -> [UInt8] {
        var writer = WireWriter(capacity: encodedSize)
        header.encode(into: &writer)
        switch payload {
        case let .manufacturerImage(image, signature):
            writer.append(image)
            if let signature {
                let length = UInt16(truncatingIfNeeded: signature.count)
                writer.u8(UInt8(length >> 8))
                writer.u8(UInt8(truncatingIfNeeded: length))
                writer.append(signature)
            }
        case let .subElements(elements):
            for element in elements {
                writer.u16le(element.tag)
                writer.u32le(UInt32(truncatingIfNeeded: element.data.count))
                writer.append(element.data)
            }
        }
        return writer.bytes
    }

    // MARK: building

    /// An unsigned GB image: `header` (its total size set here), then the Manufacturer Image.
    public static func gb(header: OTAImageHeader, manufacturerImage: [UInt8]) -> OTAImage {
        var header = header
        header.totalImageSize = UInt32(truncatingIfNeeded: header.headerLength + manufacturerImage.count)
        return OTAImage(header: header, payload: .manufacturerImage(manufacturerImage, signature: nil))
    }

    /// A signed GB image: `header` (its total size set here), the Manufacturer Image, and the
    /// signature `sign` returns over ``signedContent``.
    ///
    /// `sign` must return the 64-byte raw r||s signature; the block's length field says how many
    /// bytes it returned, so a wrong length is caught by the parser, not hidden.
    public static func gb<E: Error>(
        header: OTAImageHeader, manufacturerImage: [UInt8], sign: ([UInt8]) throws(E) -> [UInt8]
    ) throws(E) -> OTAImage {
        var header = header
        header.totalImageSize = UInt32(truncatingIfNeeded: header.headerLength + manufacturerImage.count + signatureBlockLength)
        let signature = try sign(header.encoded() + manufacturerImage)
        return OTAImage(header: header, payload: .manufacturerImage(manufacturerImage, signature: signature))
    }

    /// A generic Zigbee image holding `subElements`, its total size set.
    public static func zigbee(header: OTAImageHeader, subElements: [OTASubElement]) -> OTAImage {
        var image = OTAImage(header: header, payload: .subElements(subElements))
        image.header.totalImageSize = UInt32(truncatingIfNeeded: image.encodedSize)
        return image
    }

    // MARK: parsing

    /// How to read a file.
    public struct ParseOptions: Hashable, Sendable {
        /// What a signature block is taken to be at the end of a GB image.
        public enum Signature: String, Hashable, Sendable {
            /// A signature block if the last 66 bytes start with `00 40` (a Manufacturer Image that
            /// happens to end so is misread: say ``required`` or ``absent`` when you know).
            case auto
            /// The image must end with a signature block.
            case required
            /// The whole body is the Manufacturer Image.
            case absent
        }

        /// The largest file accepted, in bytes; nil for no limit (then 4 GiB, the u32 of the header).
        public var maxImageBytes: Int?
        /// The form to read; nil to tell: sub-elements if the body is exactly a run of sub-elements
        /// with one upgrade image (tag 0x0000), else GB.
        public var format: Format?
        public var signature: Signature

        public init(maxImageBytes: Int? = nil, format: Format? = nil, signature: Signature = .auto) {
            self.maxImageBytes = maxImageBytes
            self.format = format
            self.signature = signature
        }
    }

    /// Reads a whole OTA upgrade file. Total: any bytes give an image or a named reason.
    ///
    /// Checks, in order: the size limit, the identifier, the header version, the header length
    /// against the field control, the rest of the header, the total size against the file size,
    /// then the body in the form asked for (or told apart as ``ParseOptions/format`` says).
    public init(parsing bytes: [UInt8], options: ParseOptions = ParseOptions()) throws(OTAImageError) {
        try self.init(parsing: bytes[...], options: options)
    }

    public init(parsing bytes: ArraySlice<UInt8>, options: ParseOptions = ParseOptions()) throws(OTAImageError) {
        if let limit = options.maxImageBytes, bytes.count > limit {
            throw .imageTooLarge(size: bytes.count, limit: limit)
        }
        var reader = WireReader(bytes)
        let header = try OTAImageHeader(decoding: &reader)
        if let limit = options.maxImageBytes, Int(header.totalImageSize) > limit {
            throw .imageTooLarge(size: Int(header.totalImageSize), limit: limit)
        }
        guard Int(header.totalImageSize) == bytes.count else {
            throw .totalSizeMismatch(declared: header.totalImageSize, fileSize: bytes.count)
        }
        let bodyOffset = reader.offset
        let body = reader.rest()
        let payload: Payload
        switch options.format {
        case .zigbee?:
            payload = .subElements(try Self.subElements(body, offset: bodyOffset))
        case .gb?:
            payload = try Self.manufacturerImage(body, offset: bodyOffset, signature: options.signature)
        case nil:
            if let elements = try? Self.subElements(body, offset: bodyOffset) {
                payload = .subElements(elements)
            } else {
                payload = try Self.manufacturerImage(body, offset: bodyOffset, signature: options.signature)
            }
        }
        self.init(header: header, payload: payload)
    }

    /// Only the header, for a quick look at what a file claims to be (no size checks).
    public static func peekHeader(_ bytes: [UInt8]) throws(OTAImageError) -> OTAImageHeader {
        var reader = WireReader(bytes)
        return try OTAImageHeader(decoding: &reader)
    }

    static func subElements(_ body: ArraySlice<UInt8>, offset: Int) throws(OTAImageError) -> [OTASubElement] {
        do {
            return try subElements(body)
        } catch let .truncated(field, at, needed, available) {
            // Offsets from the start of the file, not of the body.
            throw .truncated(field: field, offset: offset + at, needed: needed, available: available)
        } catch let .subElementOverrun(tag, at, length, available) {
            throw .subElementOverrun(tag: tag, offset: offset + at, length: length, available: available)
        }
    }

    private static func subElements(_ body: ArraySlice<UInt8>) throws(OTAImageError) -> [OTASubElement] {
        var reader = WireReader(body)
        var elements: [OTASubElement] = []
        while !reader.isAtEnd {
            let start = reader.offset
            let tag = try wire { () throws(WireError) in try reader.u16le("sub-element tag") }
            let length = try wire { () throws(WireError) in try reader.u32le("sub-element length") }
            guard Int(length) <= reader.remaining else {
                throw .subElementOverrun(tag: tag, offset: start, length: length, available: reader.remaining)
            }
            let data = try wire { () throws(WireError) in try reader.bytes(Int(length), "sub-element data") }
            elements.append(OTASubElement(tag: tag, data: Array(data)))
        }
        let images = elements.filter { $0.tag == OTASubElement.upgradeImageTag }.count
        guard images == 1 else { throw .upgradeImageCount(found: images) }
        return elements
    }

    static func manufacturerImage(_ body: ArraySlice<UInt8>, offset: Int, signature: ParseOptions.Signature) throws(OTAImageError) -> Payload {
        let blockStart = body.endIndex - signatureBlockLength
        let hasBlock = body.count >= signatureBlockLength && body[blockStart] == 0x00 && body[blockStart + 1] == UInt8(signatureLength)
        switch signature {
        case .absent:
            return .manufacturerImage(Array(body), signature: nil)
        case .auto where !hasBlock:
            return .manufacturerImage(Array(body), signature: nil)
        case .required where !hasBlock:
            guard body.count >= signatureBlockLength else {
                throw .badSignatureBlock(offset: offset, reason: "the body is \(body.count) bytes, too short for a \(signatureBlockLength)-byte signature block")
            }
            let length = UInt16(body[blockStart]) << 8 | UInt16(body[blockStart + 1])
            throw .badSignatureBlock(
                offset: offset + (blockStart - body.startIndex),
                reason: "the length is 0x\(upperHex(length, width: 4)), not 0x0040 (u16 big-endian)")
        case .auto, .required:
            return .manufacturerImage(Array(body[..<blockStart]), signature: Array(body[(blockStart + 2)...]))
        }
    }
}
