import SMETSCore

/// Constants of the HAN link, version 1 (`docs/han-link.md`).
public enum HANLink {
    /// The only version this module speaks.
    public static let version: UInt8 = 1
    /// The largest value of a frame's length field: type byte plus body.
    public static let maxFrameLength = 4096
    /// Bytes of the length prefix.
    public static let lengthPrefixSize = 2
    /// Smart Energy, the profile every DATA frame carries.
    public static let smartEnergyProfileID: UInt16 = 0x0109
    /// Every emulated device answers on this endpoint.
    public static let deviceEndpoint: UInt8 = 1
}

/// The type byte that opens every HAN link frame.
public enum HANFrameType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case hello = 0x01
    case welcome = 0x02
    case data = 0x10
    case error = 0x7F

    public var description: String {
        switch self {
        case .hello: "HELLO"
        case .welcome: "WELCOME"
        case .data: "DATA"
        case .error: "ERROR"
        }
    }
}

/// One frame of the HAN link, either direction.
public enum HANFrame: Hashable, Sendable {
    case hello(HANHello)
    case welcome(HANWelcome)
    case data(HANData)
    case error(HANError)

    public var type: HANFrameType {
        switch self {
        case .hello: .hello
        case .welcome: .welcome
        case .data: .data
        case .error: .error
        }
    }

    /// The value of the length prefix: type byte plus body.
    public var frameLength: Int {
        switch self {
        case .hello: 1 + HANHello.bodyLength
        case .welcome: 1 + HANWelcome.bodyLength
        case let .data(data): 1 + HANData.headerLength + data.zcl.count
        case let .error(error): 1 + 1 + error.encodedReason.count
        }
    }

    /// The frame as it goes on the stream, length prefix included.
    ///
    /// A DATA frame whose ZCL is longer than ``HANData/maxZCLLength`` is the caller's error: it is
    /// still written, with a length (clamped to 0xFFFF) that a conforming peer refuses with
    /// ERROR 4 and a close, so the fault shows instead of corrupting the stream silently.
    /// An ERROR frame's reason is cut to fit the frame limit.
    public func encoded() -> [UInt8] {
        var writer = WireWriter(capacity: HANLink.lengthPrefixSize + frameLength)
        encode(into: &writer)
        return writer.bytes
    }

    /// Appends the frame, length prefix included, to `writer`.
    public func encode(into writer: inout WireWriter) {
        writer.u16le(UInt16(clamping: frameLength))
        writer.u8(type.rawValue)
        switch self {
        case let .hello(hello):
            writer.u8(hello.version)
            writer.eui64(hello.rigNode)
            writer.eui64(hello.target)
        case let .welcome(welcome):
            writer.u8(welcome.version)
            writer.eui64(welcome.device)
            writer.u8(welcome.deviceType)
            writer.u8(welcome.smetsMode)
            writer.u16le(welcome.manufacturerCode)
            writer.u16le(welcome.imageType)
            writer.u32le(welcome.currentFileVersion)
        case let .data(data):
            writer.eui64(data.source)
            writer.eui64(data.destination)
            writer.u16le(data.profileID)
            writer.u16le(data.clusterID)
            writer.u8(data.sourceEndpoint)
            writer.u8(data.destinationEndpoint)
            writer.append(data.zcl)
        case let .error(error):
            writer.u8(error.code.rawValue)
            writer.append(error.encodedReason)
        }
    }

    /// Decodes exactly one whole frame, length prefix included.
    ///
    /// - Throws: ``HANFrameError`` for any framing fault, including bytes missing
    ///   (``HANFrameError/incomplete(needed:available:)``) or left over after the frame
    ///   (``HANFrameError/trailingBytes(_:)``).
    public init(decoding frame: ArraySlice<UInt8>, maxFrameLength: Int = HANLink.maxFrameLength) throws(HANFrameError) {
        guard frame.count >= HANLink.lengthPrefixSize else {
            throw .incomplete(needed: HANLink.lengthPrefixSize, available: frame.count)
        }
        let start = frame.startIndex
        let length = Int(frame[start]) | Int(frame[start + 1]) << 8
        try HANFrameDecoder.check(length: length, maxFrameLength: maxFrameLength)
        let total = HANLink.lengthPrefixSize + length
        guard frame.count >= total else { throw .incomplete(needed: total, available: frame.count) }
        guard frame.count == total else { throw .trailingBytes(frame.count - total) }
        self = try HANFrame.decodeBody(type: frame[start + 2], body: frame[(start + 3)..<(start + total)])
    }

    public init(decoding frame: [UInt8], maxFrameLength: Int = HANLink.maxFrameLength) throws(HANFrameError) {
        try self.init(decoding: frame[...], maxFrameLength: maxFrameLength)
    }

    /// Decodes a frame from its type byte and body (what follows the type byte); the fast path
    /// for a caller that has already split the stream into frames.
    public static func decodeBody(type rawType: UInt8, body: ArraySlice<UInt8>) throws(HANFrameError) -> HANFrame {
        guard let type = HANFrameType(rawValue: rawType) else { throw .unknownFrameType(rawType) }
        // Sizes are checked here, before any read, so that each fault gets its own error.
        switch type {
        case .hello:
            guard body.count == HANHello.bodyLength else {
                throw .wrongBodyLength(type: type, expected: HANHello.bodyLength, actual: body.count)
            }
        case .welcome:
            guard body.count == HANWelcome.bodyLength else {
                throw .wrongBodyLength(type: type, expected: HANWelcome.bodyLength, actual: body.count)
            }
        case .data:
            guard body.count >= HANData.minimumBodyLength else {
                throw .bodyTooShort(type: type, actual: body.count, minimum: HANData.minimumBodyLength)
            }
        case .error:
            guard body.count >= 1 else { throw .bodyTooShort(type: type, actual: body.count, minimum: 1) }
            guard let code = HANErrorCode(rawValue: body[body.startIndex]) else {
                throw .unknownErrorCode(body[body.startIndex])
            }
            return .error(HANError(code: code, reason: ZCLString.decode(body.dropFirst())))
        }
        var reader = WireReader(body)
        do throws(WireError) {
            switch type {
            case .hello:
                return .hello(HANHello(version: try reader.u8(), rigNode: try reader.eui64(), target: try reader.eui64()))
            case .welcome:
                return .welcome(HANWelcome(
                    version: try reader.u8(), device: try reader.eui64(),
                    deviceType: try reader.u8(), smetsMode: try reader.u8(),
                    manufacturerCode: try reader.u16le(), imageType: try reader.u16le(),
                    currentFileVersion: try reader.u32le()))
            case .data, .error:
                return .data(HANData(
                    source: try reader.eui64(), destination: try reader.eui64(),
                    profileID: try reader.u16le(), clusterID: try reader.u16le(),
                    sourceEndpoint: try reader.u8(), destinationEndpoint: try reader.u8(),
                    zcl: Array(reader.rest())))
            }
        } catch {
            // Unreachable after the size checks above; mapped rather than trapped all the same.
            throw .malformedBody(type: type, error)
        }
    }
}

/// HELLO, the rig's first frame: which device it wants to talk to.
public struct HANHello: Hashable, Sendable {
    /// Bytes after the type byte: version, two EUI-64s.
    public static let bodyLength = 17

    public var version: UInt8
    /// The rig's own node address, the source of the DATA frames it sends.
    public var rigNode: EUI64
    /// The device to attach to; all zero on a per-device socket.
    public var target: EUI64

    public init(version: UInt8 = HANLink.version, rigNode: EUI64, target: EUI64) {
        self.version = version
        self.rigNode = rigNode
        self.target = target
    }
}

/// WELCOME, the daemon's answer to HELLO: who the rig is now attached to.
public struct HANWelcome: Hashable, Sendable {
    /// Bytes after the type byte.
    public static let bodyLength = 19

    public var version: UInt8
    public var device: EUI64
    /// GBCS device type number, raw so that a rig can see a value this build does not know.
    public var deviceType: UInt8
    /// SMETS mode number, raw for the same reason.
    public var smetsMode: UInt8
    public var manufacturerCode: UInt16
    public var imageType: UInt16
    /// The firmware version the device presents; equals Basic SWBuildID.
    public var currentFileVersion: UInt32

    public init(
        version: UInt8 = HANLink.version, device: EUI64, deviceType: UInt8, smetsMode: UInt8,
        manufacturerCode: UInt16, imageType: UInt16, currentFileVersion: UInt32
    ) {
        self.version = version
        self.device = device
        self.deviceType = deviceType
        self.smetsMode = smetsMode
        self.manufacturerCode = manufacturerCode
        self.imageType = imageType
        self.currentFileVersion = currentFileVersion
    }

    public init(
        version: UInt8 = HANLink.version, device: EUI64, deviceType: DeviceType, smetsMode: SMETSMode,
        manufacturerCode: UInt16, imageType: UInt16, firmware: FirmwareVersion
    ) {
        self.init(
            version: version, device: device, deviceType: deviceType.rawValue, smetsMode: smetsMode.rawValue,
            manufacturerCode: manufacturerCode, imageType: imageType, currentFileVersion: firmware.rawValue)
    }

    /// The device type, nil for a number this build does not know.
    public var knownDeviceType: DeviceType? { DeviceType(rawValue: deviceType) }
    /// The SMETS mode, nil for a number this build does not know.
    public var knownSMETSMode: SMETSMode? { SMETSMode(rawValue: smetsMode) }
    public var firmware: FirmwareVersion { FirmwareVersion(currentFileVersion) }
}

/// DATA: one ZCL frame between a rig node and a device, with its APS addressing.
public struct HANData: Hashable, Sendable {
    /// Bytes before the ZCL frame: two EUI-64s, profile, cluster, two endpoints.
    public static let headerLength = 22
    /// The shortest ZCL frame: frame control, sequence number, command ID.
    public static let minimumZCLLength = 3
    public static let minimumBodyLength = headerLength + minimumZCLLength
    /// The longest ZCL frame a DATA frame can carry.
    public static let maxZCLLength = HANLink.maxFrameLength - 1 - headerLength

    public var source: EUI64
    public var destination: EUI64
    public var profileID: UInt16
    public var clusterID: UInt16
    public var sourceEndpoint: UInt8
    public var destinationEndpoint: UInt8
    /// The ZCL frame, undecoded; see ``ZCLFrame``.
    public var zcl: [UInt8]

    public init(
        source: EUI64, destination: EUI64, profileID: UInt16 = HANLink.smartEnergyProfileID, clusterID: UInt16,
        sourceEndpoint: UInt8 = HANLink.deviceEndpoint, destinationEndpoint: UInt8 = HANLink.deviceEndpoint,
        zcl: [UInt8]
    ) {
        self.source = source
        self.destination = destination
        self.profileID = profileID
        self.clusterID = clusterID
        self.sourceEndpoint = sourceEndpoint
        self.destinationEndpoint = destinationEndpoint
        self.zcl = zcl
    }

    /// The answer's addressing: source and destination, and the endpoints, swapped.
    public func reply(zcl: [UInt8]) -> HANData {
        HANData(
            source: destination, destination: source, profileID: profileID, clusterID: clusterID,
            sourceEndpoint: destinationEndpoint, destinationEndpoint: sourceEndpoint, zcl: zcl)
    }
}

/// ERROR: the daemon refuses something; ``HANErrorCode/closesConnection`` says whether it hangs up.
public struct HANError: Hashable, Sendable {
    /// The longest reason that fits a frame: the limit less the type and code bytes.
    public static let maxReasonLength = HANLink.maxFrameLength - 2

    public var code: HANErrorCode
    /// Human-readable UTF-8; decoding repairs invalid UTF-8 rather than refusing the frame, each
    /// invalid sequence becoming "?" (``ZCLString/decode(_:)``), so the reason still fits when re-sent.
    public var reason: String

    public init(code: HANErrorCode, reason: String) {
        self.code = code
        self.reason = reason
    }

    /// The reason's UTF-8, cut on a character boundary to fit the frame limit.
    var encodedReason: [UInt8] { ZCLString.utf8(reason, maxLength: Self.maxReasonLength) }
}

/// The codes an ERROR frame carries.
public enum HANErrorCode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case unsupportedVersion = 1
    case unknownDevice = 2
    case malformedFrame = 3
    case frameTooLarge = 4
    /// A DATA frame before HELLO, or to a device other than the attached one.
    case notAttached = 5
    case tooManyConnections = 6
    case notAuthorised = 7

    /// Whether the daemon closes the connection after sending this error; only 5 keeps it open.
    public var closesConnection: Bool { self != .notAttached }

    public var description: String {
        switch self {
        case .unsupportedVersion: "unsupported version"
        case .unknownDevice: "unknown device"
        case .malformedFrame: "malformed frame"
        case .frameTooLarge: "frame too large"
        case .notAttached: "not attached / wrong destination"
        case .tooManyConnections: "too many connections"
        case .notAuthorised: "not authorised"
        }
    }
}
