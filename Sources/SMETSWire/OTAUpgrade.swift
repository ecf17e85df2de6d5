import SMETSCore

// OTA Upgrade cluster 0x0019. The device being upgraded is the client; the hub is the server.
// Layouts follow gb-smart-metering.md and agree with zigpy's `zcl/clusters/general.py`.

/// OTA 0x00, server to client: an image is available; query when ready.
///
/// The payload type (0-3) says how many of the optional fields follow, in order. Here it is
/// derived from which fields are set: a field is written only if every field before it is.
public struct ImageNotify: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.otaUpgrade
    public static let commandID = OTACommandID.imageNotify
    public static let direction = ZCLDirection.serverToClient

    /// 1-100: the chance, in percent, that a client receiving a broadcast should query.
    public var queryJitter: UInt8
    public var manufacturerCode: UInt16?
    public var imageType: UInt16?
    public var newFileVersion: UInt32?

    public init(queryJitter: UInt8, manufacturerCode: UInt16? = nil, imageType: UInt16? = nil, newFileVersion: UInt32? = nil) {
        self.queryJitter = queryJitter
        self.manufacturerCode = manufacturerCode
        self.imageType = imageType
        self.newFileVersion = newFileVersion
    }

    /// 0 jitter only; 1 + manufacturer; 2 + image type; 3 + file version.
    public var payloadType: UInt8 {
        guard manufacturerCode != nil else { return 0 }
        guard imageType != nil else { return 1 }
        return newFileVersion == nil ? 2 : 3
    }

    /// - Throws: also ``WireError/invalidValue(field:offset:reason:)`` for a payload type over 3.
    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        let payloadType = try reader.u8("payload type")
        guard payloadType <= 3 else {
            throw .invalidValue(field: "payload type", offset: 0, reason: "\(payloadType) is not 0-3")
        }
        queryJitter = try reader.u8("query jitter")
        manufacturerCode = payloadType >= 1 ? try reader.u16le("manufacturer code") : nil
        imageType = payloadType >= 2 ? try reader.u16le("image type") : nil
        newFileVersion = payloadType >= 3 ? try reader.u32le("new file version") : nil
    }

    public func encode(into writer: inout WireWriter) {
        let type = payloadType
        writer.u8(type)
        writer.u8(queryJitter)
        if type >= 1, let manufacturerCode { writer.u16le(manufacturerCode) }
        if type >= 2, let imageType { writer.u16le(imageType) }
        if type >= 3, let newFileVersion { writer.u32le(newFileVersion) }
    }
}

/// OTA 0x01, client to server: the device says what it runs and asks for a newer image.
public struct QueryNextImageRequest: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.otaUpgrade
    public static let commandID = OTACommandID.queryNextImageRequest
    public static let direction = ZCLDirection.clientToServer

    public var manufacturerCode: UInt16
    public var imageType: UInt16
    public var currentFileVersion: UInt32
    /// Present when field control bit 0 is set.
    public var hardwareVersion: UInt16?

    public init(manufacturerCode: UInt16, imageType: UInt16, currentFileVersion: UInt32, hardwareVersion: UInt16? = nil) {
        self.manufacturerCode = manufacturerCode
        self.imageType = imageType
        self.currentFileVersion = currentFileVersion
        self.hardwareVersion = hardwareVersion
    }

    /// Bit 0: hardware version present. Other bits are reserved, ignored on decoding.
    public var fieldControl: UInt8 { hardwareVersion == nil ? 0 : 0b1 }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        let control = try reader.u8("field control")
        manufacturerCode = try reader.u16le("manufacturer code")
        imageType = try reader.u16le("image type")
        currentFileVersion = try reader.u32le("current file version")
        hardwareVersion = control & 0b1 != 0 ? try reader.u16le("hardware version") : nil
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(fieldControl)
        writer.u16le(manufacturerCode)
        writer.u16le(imageType)
        writer.u32le(currentFileVersion)
        if let hardwareVersion { writer.u16le(hardwareVersion) }
    }
}

/// OTA 0x02, server to client: the image to download, or why there is none.
public enum QueryNextImageResponse: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.otaUpgrade
    public static let commandID = OTACommandID.queryNextImageResponse
    public static let direction = ZCLDirection.serverToClient

    /// SUCCESS: the image's identity and total size (OTA header included).
    case success(manufacturerCode: UInt16, imageType: UInt16, fileVersion: UInt32, imageSize: UInt32)
    /// Any other status, typically NO_IMAGE_AVAILABLE or NOT_AUTHORIZED; no fields follow.
    /// Encoding writes FAILURE (0x01) for a stray 0x00, which would promise fields.
    case failure(statusCode: UInt8)

    public static func failure(_ status: ZCLStatus) -> QueryNextImageResponse { .failure(statusCode: status.rawValue) }

    public var statusCode: UInt8 {
        switch self {
        case .success: ZCLStatus.success.rawValue
        case let .failure(code): code == ZCLStatus.success.rawValue ? ZCLStatus.failure.rawValue : code
        }
    }

    public var status: ZCLStatus? { ZCLStatus(rawValue: statusCode) }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        let status = try reader.u8("status")
        guard status == ZCLStatus.success.rawValue else {
            self = .failure(statusCode: status)
            return
        }
        self = .success(
            manufacturerCode: try reader.u16le("manufacturer code"), imageType: try reader.u16le("image type"),
            fileVersion: try reader.u32le("file version"), imageSize: try reader.u32le("image size"))
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(statusCode)
        if case let .success(manufacturerCode, imageType, fileVersion, imageSize) = self {
            writer.u16le(manufacturerCode)
            writer.u16le(imageType)
            writer.u32le(fileVersion)
            writer.u32le(imageSize)
        }
    }
}

/// OTA 0x03, client to server: send me the block of the image at this offset.
public struct ImageBlockRequest: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.otaUpgrade
    public static let commandID = OTACommandID.imageBlockRequest
    public static let direction = ZCLDirection.clientToServer

    public var manufacturerCode: UInt16
    public var imageType: UInt16
    public var fileVersion: UInt32
    public var fileOffset: UInt32
    public var maximumDataSize: UInt8
    /// Present when field control bit 0 is set.
    public var requestNodeAddress: EUI64?
    /// Milliseconds; present when field control bit 1 is set.
    public var minimumBlockPeriod: UInt16?

    public init(
        manufacturerCode: UInt16, imageType: UInt16, fileVersion: UInt32, fileOffset: UInt32, maximumDataSize: UInt8,
        requestNodeAddress: EUI64? = nil, minimumBlockPeriod: UInt16? = nil
    ) {
        self.manufacturerCode = manufacturerCode
        self.imageType = imageType
        self.fileVersion = fileVersion
        self.fileOffset = fileOffset
        self.maximumDataSize = maximumDataSize
        self.requestNodeAddress = requestNodeAddress
        self.minimumBlockPeriod = minimumBlockPeriod
    }

    /// Bit 0: request node address present; bit 1: minimum block period present.
    public var fieldControl: UInt8 {
        (requestNodeAddress == nil ? 0 : 0b01) | (minimumBlockPeriod == nil ? 0 : 0b10)
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        let control = try reader.u8("field control")
        manufacturerCode = try reader.u16le("manufacturer code")
        imageType = try reader.u16le("image type")
        fileVersion = try reader.u32le("file version")
        fileOffset = try reader.u32le("file offset")
        maximumDataSize = try reader.u8("maximum data size")
        requestNodeAddress = control & 0b01 != 0 ? try reader.eui64("request node address") : nil
        minimumBlockPeriod = control & 0b10 != 0 ? try reader.u16le("minimum block period") : nil
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(fieldControl)
        writer.u16le(manufacturerCode)
        writer.u16le(imageType)
        writer.u32le(fileVersion)
        writer.u32le(fileOffset)
        writer.u8(maximumDataSize)
        if let requestNodeAddress { writer.eui64(requestNodeAddress) }
        if let minimumBlockPeriod { writer.u16le(minimumBlockPeriod) }
    }
}

/// OTA 0x05, server to client: a block of the image, a request to wait, or a refusal.
public enum ImageBlockResponse: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.otaUpgrade
    public static let commandID = OTACommandID.imageBlockResponse
    public static let direction = ZCLDirection.serverToClient

    /// SUCCESS: `data` is the image from `fileOffset`; at most 255 bytes (the size is a u8),
    /// longer data is cut to 255 on encoding.
    case success(manufacturerCode: UInt16, imageType: UInt16, fileVersion: UInt32, fileOffset: UInt32, data: [UInt8])
    /// WAIT_FOR_DATA: ask again at `requestTime` (UTC; relative to `currentTime`), pacing blocks by
    /// `minimumBlockPeriod` milliseconds.
    case waitForData(currentTime: UInt32, requestTime: UInt32, minimumBlockPeriod: UInt16)
    /// Any other status, typically ABORT; no fields follow. Encoding writes FAILURE (0x01)
    /// for a stray 0x00 or 0x97, whose layouts would promise fields.
    case failure(statusCode: UInt8)

    public static func failure(_ status: ZCLStatus) -> ImageBlockResponse { .failure(statusCode: status.rawValue) }

    public var statusCode: UInt8 {
        switch self {
        case .success: ZCLStatus.success.rawValue
        case .waitForData: ZCLStatus.waitForData.rawValue
        case let .failure(code):
            code == ZCLStatus.success.rawValue || code == ZCLStatus.waitForData.rawValue ? ZCLStatus.failure.rawValue : code
        }
    }

    public var status: ZCLStatus? { ZCLStatus(rawValue: statusCode) }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        let status = try reader.u8("status")
        switch status {
        case ZCLStatus.success.rawValue:
            let manufacturerCode = try reader.u16le("manufacturer code")
            let imageType = try reader.u16le("image type")
            let fileVersion = try reader.u32le("file version")
            let fileOffset = try reader.u32le("file offset")
            let size = try reader.u8("data size")
            let data = try reader.bytes(Int(size), "image data")
            self = .success(
                manufacturerCode: manufacturerCode, imageType: imageType, fileVersion: fileVersion,
                fileOffset: fileOffset, data: Array(data))
        case ZCLStatus.waitForData.rawValue:
            self = .waitForData(
                currentTime: try reader.u32le("current time"), requestTime: try reader.u32le("request time"),
                minimumBlockPeriod: try reader.u16le("minimum block period"))
        default:
            self = .failure(statusCode: status)
        }
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(statusCode)
        switch self {
        case let .success(manufacturerCode, imageType, fileVersion, fileOffset, data):
            writer.u16le(manufacturerCode)
            writer.u16le(imageType)
            writer.u32le(fileVersion)
            writer.u32le(fileOffset)
            let kept = data.prefix(Int(UInt8.max))
            writer.u8(UInt8(truncatingIfNeeded: kept.count))
            writer.append(kept)
        case let .waitForData(currentTime, requestTime, minimumBlockPeriod):
            writer.u32le(currentTime)
            writer.u32le(requestTime)
            writer.u16le(minimumBlockPeriod)
        case .failure:
            break
        }
    }
}

/// OTA 0x06, client to server: the download ended, well (SUCCESS) or not (INVALID_IMAGE, ...).
public struct UpgradeEndRequest: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.otaUpgrade
    public static let commandID = OTACommandID.upgradeEndRequest
    public static let direction = ZCLDirection.clientToServer

    /// Raw, so that a status this build does not name survives.
    public var statusCode: UInt8
    public var manufacturerCode: UInt16
    public var imageType: UInt16
    public var fileVersion: UInt32

    public init(statusCode: UInt8, manufacturerCode: UInt16, imageType: UInt16, fileVersion: UInt32) {
        self.statusCode = statusCode
        self.manufacturerCode = manufacturerCode
        self.imageType = imageType
        self.fileVersion = fileVersion
    }

    public init(status: ZCLStatus, manufacturerCode: UInt16, imageType: UInt16, fileVersion: UInt32) {
        self.init(statusCode: status.rawValue, manufacturerCode: manufacturerCode, imageType: imageType, fileVersion: fileVersion)
    }

    public var status: ZCLStatus? { ZCLStatus(rawValue: statusCode) }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        statusCode = try reader.u8("status")
        manufacturerCode = try reader.u16le("manufacturer code")
        imageType = try reader.u16le("image type")
        fileVersion = try reader.u32le("file version")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(statusCode)
        writer.u16le(manufacturerCode)
        writer.u16le(imageType)
        writer.u32le(fileVersion)
    }
}

/// OTA 0x07, server to client: when to switch to the downloaded image.
public struct UpgradeEndResponse: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.otaUpgrade
    public static let commandID = OTACommandID.upgradeEndResponse
    public static let direction = ZCLDirection.serverToClient

    /// `upgradeTime` meaning "wait for a later command to upgrade".
    public static let waitForUpgradeCommand: UInt32 = 0xFFFF_FFFF

    public var manufacturerCode: UInt16
    public var imageType: UInt16
    public var fileVersion: UInt32
    /// UTC; with `upgradeTime` 0 as well, upgrade now.
    public var currentTime: UInt32
    /// UTC, relative to `currentTime`; 0xFFFFFFFF waits for a later command.
    public var upgradeTime: UInt32

    public init(manufacturerCode: UInt16, imageType: UInt16, fileVersion: UInt32, currentTime: UInt32 = 0, upgradeTime: UInt32 = 0) {
        self.manufacturerCode = manufacturerCode
        self.imageType = imageType
        self.fileVersion = fileVersion
        self.currentTime = currentTime
        self.upgradeTime = upgradeTime
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        manufacturerCode = try reader.u16le("manufacturer code")
        imageType = try reader.u16le("image type")
        fileVersion = try reader.u32le("file version")
        currentTime = try reader.u32le("current time")
        upgradeTime = try reader.u32le("upgrade time")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u16le(manufacturerCode)
        writer.u16le(imageType)
        writer.u32le(fileVersion)
        writer.u32le(currentTime)
        writer.u32le(upgradeTime)
    }
}
