import SMETSCore
import Testing
@testable import SMETSWire

/// Reads `bytes`, returning the typed error instead of throwing it.
func parseImage(_ bytes: [UInt8], _ options: OTAImage.ParseOptions = .init()) -> Result<OTAImage, OTAImageError> {
    do throws(OTAImageError) { return .success(try OTAImage(parsing: bytes, options: options)) } catch { return .failure(error) }
}

func imageError(_ bytes: [UInt8], _ options: OTAImage.ParseOptions = .init()) -> OTAImageError? {
    if case let .failure(error) = parseImage(bytes, options) { return error }
    return nil
}

/// A stand-in signer: 64 bytes that depend on what is signed (the wire layer does no cryptography).
func fakeSignature(_ content: [UInt8]) -> [UInt8] {
    var generator = SplitMix64(seed: UInt64(content.count) &* 31 &+ UInt64(content.reduce(0) { $0 &+ UInt64($1) }))
    return generator.bytes(count: 64)
}

struct OTAImageTests {
    static let plainHeader = OTAImageHeader(manufacturerCode: 0x1234, imageType: 0x0001, fileVersion: 0x0103_0000, headerString: "ACME PPMID")
    static var fullHeader: OTAImageHeader {
        var header = plainHeader
        header.securityCredentialVersion = 0x02
        header.upgradeFileDestination = EUI64(0x00DB_1234_5678_0005)
        header.hardwareVersions = .init(minimum: 1, maximum: 3)
        return header
    }

    // MARK: layout

    @Test func headerBytesFollowTheTable() {
        let image = OTAImage.gb(header: Self.plainHeader, manufacturerImage: [0xAA, 0xBB])
        let bytes = image.encoded()
        #expect(Array(bytes[0..<4]) == hex("1E F1 EE 0B"))
        #expect(Array(bytes[4..<6]) == hex("00 01"))        // header version 0x0100
        #expect(Array(bytes[6..<8]) == hex("38 00"))        // header length 56
        #expect(Array(bytes[8..<10]) == hex("00 00"))       // field control
        #expect(Array(bytes[10..<12]) == hex("34 12"))      // manufacturer code
        #expect(Array(bytes[12..<14]) == hex("01 00"))      // image type
        #expect(Array(bytes[14..<18]) == hex("00 00 03 01")) // file version 0x01030000
        #expect(Array(bytes[18..<20]) == hex("02 00"))      // Zigbee PRO
        #expect(Array(bytes[20..<30]) == Array("ACME PPMID".utf8))
        #expect(bytes[30..<52].allSatisfy { $0 == 0 })      // NUL padding
        #expect(Array(bytes[52..<56]) == hex("3A 00 00 00")) // total size 58
        #expect(Array(bytes[56...]) == [0xAA, 0xBB])
    }

    @Test func optionalFieldsFollowFieldControlInOrder() {
        let bytes = OTAImage.gb(header: Self.fullHeader, manufacturerImage: []).encoded()
        #expect(Array(bytes[6..<8]) == hex("45 00"))        // 56 + 1 + 8 + 4 = 69
        #expect(Array(bytes[8..<10]) == hex("07 00"))
        #expect(bytes[56] == 0x02)
        #expect(Array(bytes[57..<65]) == hex("05 00 78 56 34 12 DB 00")) // EUI-64 least significant byte first
        #expect(Array(bytes[65..<69]) == hex("01 00 03 00"))
        #expect(bytes.count == 69)
    }

    @Test func signatureBlockIsBigEndianLengthThenSignature() {
        let image = OTAImage.gb(header: Self.plainHeader, manufacturerImage: [1, 2, 3], sign: fakeSignature)
        let bytes = image.encoded()
        #expect(bytes.count == 56 + 3 + 66)
        #expect(Int(image.header.totalImageSize) == bytes.count)
        #expect(Array(bytes[59..<61]) == hex("00 40"))
        #expect(Array(bytes[61...]) == image.signature)
        // The signature covers the header (total size included) and the Manufacturer Image.
        #expect(image.signature == fakeSignature(Array(bytes[0..<59])))
        #expect(image.signedContent == Array(bytes[0..<59]))
    }

    // MARK: round trips

    @Test(arguments: [false, true])
    func gbRoundTrip(signed: Bool) throws {
        var generator = SplitMix64(seed: 7)
        let body = generator.bytes(count: 1000)
        for header in [Self.plainHeader, Self.fullHeader] {
            let image = signed ? OTAImage.gb(header: header, manufacturerImage: body, sign: fakeSignature) : OTAImage.gb(header: header, manufacturerImage: body)
            let bytes = image.encoded()
            let parsed = try parseImage(bytes, .init(format: .gb)).get()
            #expect(parsed == image)
            #expect(parsed.encoded() == bytes)
            #expect(parsed.manufacturerImage == body)
            #expect((parsed.signature != nil) == signed)
            // Told apart without help, too.
            #expect(try parseImage(bytes).get() == image)
        }
    }

    @Test func zigbeeRoundTrip() throws {
        let elements = [OTASubElement(tag: 0x0000, data: Array(0..<200)), OTASubElement(tag: 0x0001, data: Array(repeating: 0x5A, count: 42))]
        for header in [Self.plainHeader, Self.fullHeader] {
            let image = OTAImage.zigbee(header: header, subElements: elements)
            let bytes = image.encoded()
            #expect(Int(image.header.totalImageSize) == bytes.count)
            let parsed = try parseImage(bytes).get()
            #expect(parsed == image)
            #expect(parsed.format == .zigbee)
            #expect(parsed.manufacturerImage == Array(0..<200))
            #expect(parsed.encoded() == bytes)
        }
    }

    @Test func reservedFieldControlBitsSurvive() throws {
        var bytes = OTAImage.gb(header: Self.plainHeader, manufacturerImage: [9]).encoded()
        bytes[9] = 0x80  // bit 15
        let parsed = try parseImage(bytes).get()
        #expect(parsed.header.reservedFieldControlBits == 0x8000)
        #expect(parsed.encoded() == bytes)
    }

    @Test func headerStringIsCutAt32BytesAndReadToTheFirstNUL() {
        var header = Self.plainHeader
        header.headerString = String(repeating: "x", count: 40)
        #expect(header.headerStringBytes.count == 32)
        #expect(header.headerString == String(repeating: "x", count: 32))
    }

    // MARK: every failure, by name

    @Test func badMagic() {
        var bytes = OTAImage.gb(header: Self.plainHeader, manufacturerImage: [1]).encoded()
        bytes[0] = 0x1F
        #expect(imageError(bytes) == .badMagic(found: 0x0BEE_F11F))
        #expect(imageError(bytes)?.reason == "bad_magic")
    }

    @Test func badHeaderVersion() {
        var bytes = OTAImage.gb(header: Self.plainHeader, manufacturerImage: [1]).encoded()
        bytes[5] = 0x02
        #expect(imageError(bytes) == .badHeaderVersion(found: 0x0200))
    }

    @Test func headerLengthInconsistentWithFieldControl() {
        var bytes = OTAImage.gb(header: Self.plainHeader, manufacturerImage: Array(repeating: 0, count: 20)).encoded()
        bytes[8] = 0x04  // announces hardware versions, but the length still says 56
        #expect(imageError(bytes) == .headerLengthInconsistent(declared: 56, fieldControl: 0x0004, expected: 60))
        var longer = OTAImage.gb(header: Self.plainHeader, manufacturerImage: [1]).encoded()
        longer[6] = 0x40
        #expect(imageError(longer)?.reason == "header_length_inconsistent")
    }

    @Test func totalSizeMustBeTheFileSize() {
        let bytes = OTAImage.gb(header: Self.plainHeader, manufacturerImage: [1, 2, 3]).encoded()
        #expect(imageError(bytes + [0]) == .totalSizeMismatch(declared: 59, fileSize: 60))
        #expect(imageError(Array(bytes.dropLast())) == .totalSizeMismatch(declared: 59, fileSize: 58))
    }

    @Test func imageLargerThanTheLimit() {
        let bytes = OTAImage.gb(header: Self.plainHeader, manufacturerImage: Array(repeating: 7, count: 100)).encoded()
        #expect(imageError(bytes, .init(maxImageBytes: 155)) == .imageTooLarge(size: 156, limit: 155))
        #expect(imageError(bytes, .init(maxImageBytes: 156)) == nil)
        // A header that claims more than the limit is refused before the sizes are compared.
        var claims = Array(bytes.prefix(56))
        claims[52] = 0xFF; claims[53] = 0xFF; claims[54] = 0xFF
        #expect(imageError(claims, .init(maxImageBytes: 1000)) == .imageTooLarge(size: 0x00FF_FFFF, limit: 1000))
    }

    @Test func truncatedAnywhereInTheHeader() {
        let bytes = OTAImage.gb(header: Self.fullHeader, manufacturerImage: []).encoded()
        #expect(imageError([]) == .truncated(field: "file identifier", offset: 0, needed: 4, available: 0))
        #expect(imageError(Array(bytes.prefix(5))) == .truncated(field: "header version", offset: 4, needed: 2, available: 1))
        #expect(imageError(Array(bytes.prefix(30))) == .truncated(field: "header string", offset: 20, needed: 32, available: 10))
        #expect(imageError(Array(bytes.prefix(60))) == .truncated(field: "upgrade file destination", offset: 57, needed: 8, available: 3))
        #expect(imageError(Array(bytes.prefix(67))) == .truncated(field: "maximum hardware version", offset: 67, needed: 2, available: 0))
        for cut in 0..<bytes.count {
            #expect(imageError(Array(bytes.prefix(cut)))?.reason == "truncated", "cut at \(cut)")
        }
    }

    @Test func subElementsThatOverrunOrLackTheUpgradeImage() throws {
        let good = OTAImage.zigbee(header: Self.plainHeader, subElements: [OTASubElement(tag: 0, data: [1, 2, 3])])
        var bytes = good.encoded()
        bytes[58] = 0x09  // sub-element length 9, 3 follow
        #expect(imageError(bytes, .init(format: .zigbee)) == .subElementOverrun(tag: 0, offset: 56, length: 9, available: 3))
        let none = OTAImage.zigbee(header: Self.plainHeader, subElements: [OTASubElement(tag: 1, data: [1])]).encoded()
        #expect(imageError(none, .init(format: .zigbee)) == .upgradeImageCount(found: 0))
        let two = OTAImage.zigbee(header: Self.plainHeader, subElements: [OTASubElement(tag: 0, data: [1]), OTASubElement(tag: 0, data: [2])]).encoded()
        #expect(imageError(two, .init(format: .zigbee)) == .upgradeImageCount(found: 2))
        let cut = Array(good.encoded().prefix(60))
        var recut = cut
        recut[52] = 60
        #expect(imageError(recut, .init(format: .zigbee)) == .truncated(field: "sub-element length", offset: 58, needed: 4, available: 2))
        // Not sub-elements: read as a GB image when the form is not given.
        #expect(try parseImage(none).get().format == .gb)
    }

    @Test func requiredSignatureBlock() throws {
        let unsigned = OTAImage.gb(header: Self.plainHeader, manufacturerImage: Array(repeating: 1, count: 100)).encoded()
        #expect(imageError(unsigned, .init(format: .gb, signature: .required))
                == .badSignatureBlock(offset: 90, reason: "the length is 0x0101, not 0x0040 (u16 big-endian)"))
        let short = OTAImage.gb(header: Self.plainHeader, manufacturerImage: [1]).encoded()
        #expect(imageError(short, .init(format: .gb, signature: .required))?.reason == "bad_signature_block")
        let signed = OTAImage.gb(header: Self.plainHeader, manufacturerImage: [1, 2], sign: fakeSignature).encoded()
        #expect(try parseImage(signed, .init(format: .gb, signature: .absent)).get().manufacturerImage.count == 68)
        #expect(try parseImage(signed, .init(format: .gb, signature: .required)).get().manufacturerImage == [1, 2])
    }

    @Test func everyReasonHasAStableNameAndASentence() {
        let errors: [OTAImageError] = [
            .imageTooLarge(size: 2, limit: 1), .badMagic(found: 0), .badHeaderVersion(found: 0),
            .headerLengthInconsistent(declared: 0, fieldControl: 0, expected: 56), .totalSizeMismatch(declared: 0, fileSize: 1),
            .truncated(field: "x", offset: 0, needed: 1, available: 0), .subElementOverrun(tag: 0, offset: 0, length: 1, available: 0),
            .upgradeImageCount(found: 0), .badSignatureBlock(offset: 0, reason: "r"),
        ]
        #expect(Set(errors.map(\.reason)).count == errors.count)
        #expect(errors.allSatisfy { !$0.description.isEmpty })
    }

    // MARK: totality

    @Test func randomAndMutatedFilesNeverTrap() {
        var generator = SplitMix64(seed: 0x0BEE_F11E)
        let seeds = [
            OTAImage.gb(header: Self.fullHeader, manufacturerImage: generator.bytes(count: 300), sign: fakeSignature).encoded(),
            OTAImage.zigbee(header: Self.plainHeader, subElements: [OTASubElement(tag: 0, data: generator.bytes(count: 100))]).encoded(),
        ]
        for _ in 0..<2000 {
            var bytes = seeds[Int(generator.next() % 2)]
            for _ in 0..<Int(generator.next() % 4 + 1) {
                let index = Int(generator.next() % UInt64(bytes.count))
                bytes[index] = UInt8(truncatingIfNeeded: generator.next())
            }
            if generator.next() % 3 == 0 { bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count)))) }
            for options in [OTAImage.ParseOptions(), .init(maxImageBytes: 200), .init(format: .zigbee), .init(format: .gb, signature: .required)] {
                switch parseImage(bytes, options) {
                case .success(let image): #expect(image.encodedSize == bytes.count)
                case .failure(let error): #expect(!error.reason.isEmpty)
                }
            }
        }
        for length in 0..<120 { _ = parseImage(generator.bytes(count: length)) }
    }
}
