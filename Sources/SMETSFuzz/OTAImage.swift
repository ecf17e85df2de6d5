import SMETSWire

extension FuzzTarget {
    /// OTA and GB firmware image files, as `firmware.check`, `firmware.update` and `smetsctl` read them.
    ///
    /// Input: an options byte (bits 0-1: format auto, zigbee, gb; bits 2-3: signature auto,
    /// required, absent; bit 4: a 4 KiB size limit), then the file. Properties: a file that parses
    /// encodes back to exactly its bytes, and parses again to the same image; the header peeks the
    /// same; the description of the form and an error's description are not empty.
    public static let otaImage = FuzzTarget(
        name: "ota-image",
        summary: "OTAImage(parsing:) of Zigbee and GB image files under every option; byte-exact round trip"
    ) { bytes in
        var input = FuzzInput(bytes)
        let control = input.byte()
        let formats: [OTAImage.Format?] = [nil, .zigbee, .gb, nil]
        let signatures: [OTAImage.ParseOptions.Signature] = [.auto, .required, .absent, .auto]
        let options = OTAImage.ParseOptions(
            maxImageBytes: control & 0x10 != 0 ? 4096 : nil, format: formats[Int(control & 0x03)],
            signature: signatures[Int(control >> 2 & 0x03)])
        let file = input.rest

        let image: OTAImage
        do throws(OTAImageError) {
            image = try OTAImage(parsing: file, options: options)
        } catch {
            return error.description.isEmpty ? "an error without a description" : nil
        }
        let encoded = image.encoded()
        guard encoded == file else {
            return "encode(parse(file)) differs from the file: \(encoded.count) bytes vs \(file.count)"
        }
        guard image.encodedSize == file.count else { return "encodedSize \(image.encodedSize) for a \(file.count)-byte file" }
        do throws(OTAImageError) {
            let again = try OTAImage(parsing: encoded, options: options)
            guard again == image else { return "parse(encode(image)) differs from the image" }
            guard try OTAImage.peekHeader(file) == image.header else { return "peekHeader differs from the parsed header" }
        } catch {
            return "the encoded image does not parse again: \(error)"
        }
        if image.formatDescription.isEmpty { return "an empty format description" }
        let candidate = image.firmwareCandidate
        guard candidate.fileSize == file.count, candidate.signedContent == image.header.encoded() + image.manufacturerImage else {
            return "the firmware candidate does not describe the file"
        }
        return nil
    }
}
