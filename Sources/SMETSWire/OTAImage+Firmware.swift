import SMETSCore

extension OTAImage {
    /// What the firmware rules of SMETSCore check: the header's fields, the signature and the
    /// bytes it covers (header, then Manufacturer Image).
    public var firmwareCandidate: FirmwareCandidate {
        FirmwareCandidate(
            manufacturerCode: header.manufacturerCode, imageType: header.imageType,
            fileVersion: FirmwareVersion(header.fileVersion),
            hardwareVersions: header.hardwareVersions.map { (minimum: $0.minimum, maximum: $0.maximum) },
            destination: header.upgradeFileDestination, fileSize: encodedSize,
            signedContent: signedContent, signature: signature)
    }

    /// One line on the file's form for the `format` check.
    public var formatDescription: String {
        switch payload {
        case let .manufacturerImage(image, signature):
            "GB image: \(header.headerLength)-byte OTA header, \(image.count)-byte Manufacturer Image, "
                + (signature == nil ? "unsigned" : "signature block")
        case let .subElements(elements):
            "Zigbee image: \(header.headerLength)-byte OTA header, \(elements.count) sub-element\(elements.count == 1 ? "" : "s"), "
                + "\(manufacturerImage.count)-byte upgrade image"
        }
    }
}
