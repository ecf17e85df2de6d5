/// ZCL OTA Upgrade client attribute ImageUpgradeStatus (0x0006), as far as a GB HAN device uses it.
public enum ImageUpgradeStatus: UInt8, Hashable, Sendable, Codable {
    case normal = 0
    case downloading = 1
    case downloadComplete = 2
    case waitingToUpgrade = 3

    public var name: String {
        switch self {
        case .normal: "normal"
        case .downloading: "downloading"
        case .downloadComplete: "downloadComplete"
        case .waitingToUpgrade: "waitingToUpgrade"
        }
    }
}

/// The image an OTA server offered in Query Next Image Response: what the client downloads.
public struct OfferedImage: Hashable, Sendable {
    public var manufacturerCode: UInt16
    public var imageType: UInt16
    public var fileVersion: UInt32
    /// The whole file, OTA header included.
    public var imageSize: UInt32

    public init(manufacturerCode: UInt16, imageType: UInt16, fileVersion: UInt32, imageSize: UInt32) {
        self.manufacturerCode = manufacturerCode; self.imageType = imageType; self.fileVersion = fileVersion; self.imageSize = imageSize
    }
}

/// An OTA client's download in progress: the file so far, block by block from one server.
///
/// The file offset is the number of bytes held, so a transfer broken off (a rig that goes away)
/// resumes from it when the same server offers the same image again.
public struct FirmwareDownload: Hashable, Sendable {
    public var server: EUI64
    public var image: OfferedImage
    public private(set) var received: [UInt8]

    public init(server: EUI64, image: OfferedImage) {
        self.server = server
        self.image = image
        self.received = []
        received.reserveCapacity(Int(min(image.imageSize, 1 << 20)))
    }

    /// The ZCL FileOffset: where the next block starts.
    public var fileOffset: UInt32 { UInt32(truncatingIfNeeded: received.count) }
    public var remaining: Int { max(0, Int(image.imageSize) - received.count) }
    public var isComplete: Bool { remaining == 0 }

    /// The maximum data size to ask for next: the model's block size, or what is left if less.
    public func nextBlockSize(maxImageBlockBytes: Int) -> UInt8 {
        UInt8(clamping: max(1, min(maxImageBlockBytes, remaining, 255)))
    }

    /// What a block did to the download.
    public enum BlockOutcome: Hashable, Sendable {
        /// Appended; the download is complete when `complete`.
        case accepted(complete: Bool)
        /// Not the block asked for (another offset, or another image's): ignored; ask again.
        case ignored(String)
        /// A block no download can go on from (empty, or past the end of the file).
        case invalid(String)
    }

    /// Takes the data of an Image Block Response.
    public mutating func accept(manufacturerCode: UInt16, imageType: UInt16, fileVersion: UInt32, fileOffset offset: UInt32,
                                data: [UInt8]) -> BlockOutcome {
        guard manufacturerCode == image.manufacturerCode, imageType == image.imageType, fileVersion == image.fileVersion else {
            return .ignored("the block is of image \(upperHex(manufacturerCode, width: 4))/\(upperHex(imageType, width: 4))/\(upperHex(fileVersion, width: 8)), not the one being downloaded")
        }
        guard offset == fileOffset else { return .ignored("the block is at offset \(offset), the download is at \(fileOffset)") }
        guard !data.isEmpty else { return .invalid("an empty block at offset \(offset) cannot advance the download") }
        guard data.count <= remaining else {
            return .invalid("a \(data.count)-byte block at offset \(offset) runs past the image size \(image.imageSize)")
        }
        received.append(contentsOf: data)
        return .accepted(complete: isComplete)
    }
}

/// When a client switches to a downloaded image, as Upgrade End Response tells it.
public enum UpgradeSchedule: Hashable, Sendable {
    case now
    case at(Timestamp)
    /// Upgrade time 0xFFFFFFFF: wait for a later command (another Upgrade End Response, or
    /// Activate Firmware through the control API).
    case waitForCommand

    /// Reads the two UTC fields of Upgrade End Response against the device's clock `now`.
    ///
    /// With `currentTime` 0 the upgrade time is absolute on the (virtual) clock, 0 meaning now;
    /// with `currentTime` set, the delay is `upgradeTime - currentTime` from now, as ZCL 11.13.9
    /// has the client do so that the server's and client's clocks need not agree. A time not
    /// after the current one means now.
    public static func decide(currentTime: UInt32, upgradeTime: UInt32, now: Timestamp) -> UpgradeSchedule {
        if upgradeTime == 0xFFFF_FFFF { return .waitForCommand }
        if upgradeTime == 0 { return .now }
        let due: Timestamp
        if currentTime == 0 {
            due = Timestamp(zigbeeUTC: upgradeTime)
        } else {
            guard upgradeTime > currentTime else { return .now }
            // Counted from the device's clock in whole seconds, as Zigbee UTC times are.
            due = Timestamp(zigbeeUTC: now.zigbeeUTC).adding(seconds: Int64(upgradeTime - currentTime))
        }
        return due <= now ? .now : .at(due)
    }
}

/// The outcomes of Activate Firmware (DUIS CS06), numbered as the spec numbers them.
public enum ActivationOutcome: UInt8, Hashable, Sendable, CaseIterable {
    case success = 0
    case noImageHeld = 1
    case hashMismatch = 2
    case activationFailure = 3

    public var name: String {
        switch self {
        case .success: "success"
        case .noImageHeld: "noImageHeld"
        case .hashMismatch: "hashMismatch"
        case .activationFailure: "activationFailure"
        }
    }
}

/// A downloaded, validated image a device holds until it activates it.
public struct HeldFirmware: Hashable, Sendable {
    /// SHA-256 of the Manufacturer Image, lowercase hex: the image's identity.
    public var hash: String
    public var fileVersion: FirmwareVersion
    public var manufacturerCode: UInt16
    public var imageType: UInt16
    public var status: ImageUpgradeStatus
    /// When a scheduled activation is due, if one is.
    public var activateAt: Timestamp?
    public var server: EUI64?

    public init(hash: String, fileVersion: FirmwareVersion, manufacturerCode: UInt16, imageType: UInt16,
                status: ImageUpgradeStatus, activateAt: Timestamp? = nil, server: EUI64? = nil) {
        self.hash = hash; self.fileVersion = fileVersion; self.manufacturerCode = manufacturerCode; self.imageType = imageType
        self.status = status; self.activateAt = activateAt; self.server = server
    }
}

/// Lowercase hex of bytes, the form image hashes take in the API, the CLI and the store.
public func lowerHex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef")
    var text = ""
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0F)])
    }
    return text
}
