import SMETSCore

/// Bits 0-1 of the ZCL frame control.
public enum ZCLFrameType: UInt8, Sendable, CaseIterable {
    /// A command of the ZCL itself (Read Attributes, Default Response, ...), valid on any cluster.
    case global = 0b00
    /// A command defined by the cluster it is sent to.
    case clusterSpecific = 0b01
}

/// Bit 3 of the ZCL frame control: which side of the cluster sent the frame.
public enum ZCLDirection: Sendable, Hashable, CaseIterable {
    case clientToServer
    case serverToClient

    /// The direction of the answer.
    public var reversed: ZCLDirection { self == .clientToServer ? .serverToClient : .clientToServer }
}

/// The header of a ZCL general frame.
public struct ZCLHeader: Hashable, Sendable {
    public var frameType: ZCLFrameType
    /// Present exactly when the frame is manufacturer-specific (frame control bit 2).
    public var manufacturerCode: UInt16?
    public var direction: ZCLDirection
    /// Bit 4: the sender wants no Default Response to a successful command.
    public var disableDefaultResponse: Bool
    /// The transaction sequence number, echoed by the answer.
    public var sequenceNumber: UInt8
    public var commandID: UInt8

    public init(
        frameType: ZCLFrameType, manufacturerCode: UInt16? = nil, direction: ZCLDirection,
        disableDefaultResponse: Bool = false, sequenceNumber: UInt8, commandID: UInt8
    ) {
        self.frameType = frameType
        self.manufacturerCode = manufacturerCode
        self.direction = direction
        self.disableDefaultResponse = disableDefaultResponse
        self.sequenceNumber = sequenceNumber
        self.commandID = commandID
    }

    public var manufacturerSpecific: Bool { manufacturerCode != nil }

    /// The frame control byte; reserved bits 5-7 are zero.
    public var frameControl: UInt8 {
        var control = frameType.rawValue
        if manufacturerSpecific { control |= 0b0000_0100 }
        if direction == .serverToClient { control |= 0b0000_1000 }
        if disableDefaultResponse { control |= 0b0001_0000 }
        return control
    }

    /// Bytes the header takes on the wire: 3, or 5 with a manufacturer code.
    public var encodedLength: Int { manufacturerSpecific ? 5 : 3 }

    /// Reads a header; reserved frame-control bits 5-7 are ignored, as the ZCL asks of receivers.
    ///
    /// - Throws: ``WireError/truncated(field:offset:needed:available:)`` when short, and
    ///   ``WireError/invalidValue(field:offset:reason:)`` for the reserved frame types 2 and 3.
    public init(from reader: inout WireReader) throws(WireError) {
        let controlOffset = reader.offset
        let control = try reader.u8("frame control")
        guard let frameType = ZCLFrameType(rawValue: control & 0b11) else {
            throw .invalidValue(
                field: "frame control", offset: controlOffset,
                reason: "frame type \(control & 0b11) is reserved")
        }
        self.frameType = frameType
        manufacturerCode = control & 0b0000_0100 != 0 ? try reader.u16le("manufacturer code") : nil
        direction = control & 0b0000_1000 != 0 ? .serverToClient : .clientToServer
        disableDefaultResponse = control & 0b0001_0000 != 0
        sequenceNumber = try reader.u8("transaction sequence number")
        commandID = try reader.u8("command ID")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(frameControl)
        if let manufacturerCode { writer.u16le(manufacturerCode) }
        writer.u8(sequenceNumber)
        writer.u8(commandID)
    }

    /// The header of the answer to this frame: same sequence number, opposite direction,
    /// same manufacturer code.
    public func response(frameType: ZCLFrameType, commandID: UInt8, disableDefaultResponse: Bool = true) -> ZCLHeader {
        ZCLHeader(
            frameType: frameType, manufacturerCode: manufacturerCode, direction: direction.reversed,
            disableDefaultResponse: disableDefaultResponse, sequenceNumber: sequenceNumber, commandID: commandID)
    }
}

/// A ZCL general frame: header and undecoded payload.
public struct ZCLFrame: Hashable, Sendable {
    public var header: ZCLHeader
    public var payload: [UInt8]

    public init(header: ZCLHeader, payload: [UInt8] = []) {
        self.header = header
        self.payload = payload
    }

    /// A cluster-specific frame carrying `command`, its direction taken from the command's type.
    public init<Command: ZCLClusterCommand>(
        _ command: Command, sequenceNumber: UInt8, manufacturerCode: UInt16? = nil,
        disableDefaultResponse: Bool = false
    ) {
        self.init(
            header: ZCLHeader(
                frameType: .clusterSpecific, manufacturerCode: manufacturerCode, direction: Command.direction,
                disableDefaultResponse: disableDefaultResponse, sequenceNumber: sequenceNumber,
                commandID: Command.commandID),
            payload: command.encoded())
    }

    /// A global frame carrying `command`.
    public init<Command: ZCLGlobalCommand>(
        _ command: Command, direction: ZCLDirection, sequenceNumber: UInt8, manufacturerCode: UInt16? = nil,
        disableDefaultResponse: Bool = false
    ) {
        self.init(
            header: ZCLHeader(
                frameType: .global, manufacturerCode: manufacturerCode, direction: direction,
                disableDefaultResponse: disableDefaultResponse, sequenceNumber: sequenceNumber,
                commandID: Command.commandID),
            payload: command.encoded())
    }

    /// Reads a whole frame; everything after the header is the payload.
    public init(decoding bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(bytes)
        header = try ZCLHeader(from: &reader)
        payload = Array(reader.rest())
    }

    public init(decoding bytes: [UInt8]) throws(WireError) {
        try self.init(decoding: bytes[...])
    }

    public func encoded() -> [UInt8] {
        var writer = WireWriter(capacity: header.encodedLength + payload.count)
        header.encode(into: &writer)
        writer.append(payload)
        return writer.bytes
    }

    /// Decodes the payload as `Command`.
    public func decodePayload<Command: ZCLPayload>(as _: Command.Type) throws(WireError) -> Command {
        try Command(decoding: payload[...])
    }
}

/// A ZCL status code.
///
/// Wire structures keep the raw byte (so a status this build does not name survives a round trip)
/// and offer this enum through an accessor.
public enum ZCLStatus: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case success = 0x00
    case failure = 0x01
    case notAuthorized = 0x7E
    case reservedFieldNotZero = 0x7F
    case malformedCommand = 0x80
    case unsupClusterCommand = 0x81
    case unsupGeneralCommand = 0x82
    case unsupManufClusterCommand = 0x83
    case unsupManufGeneralCommand = 0x84
    case invalidField = 0x85
    case unsupportedAttribute = 0x86
    case invalidValue = 0x87
    case readOnly = 0x88
    case insufficientSpace = 0x89
    case duplicateExists = 0x8A
    case notFound = 0x8B
    case unreportableAttribute = 0x8C
    case invalidDataType = 0x8D
    case invalidSelector = 0x8E
    case writeOnly = 0x8F
    case inconsistentStartupState = 0x90
    case definedOutOfBand = 0x91
    case inconsistent = 0x92
    case actionDenied = 0x93
    case timeout = 0x94
    case abort = 0x95
    case invalidImage = 0x96
    case waitForData = 0x97
    case noImageAvailable = 0x98
    case requireMoreImage = 0x99
    case notificationPending = 0x9A
    case hardwareFailure = 0xC0
    case softwareFailure = 0xC1
    case calibrationError = 0xC2
    case unsupportedCluster = 0xC3

    /// The name the ZCL specification uses, e.g. `UNSUP_CLUSTER_COMMAND`.
    public var description: String {
        switch self {
        case .success: "SUCCESS"
        case .failure: "FAILURE"
        case .notAuthorized: "NOT_AUTHORIZED"
        case .reservedFieldNotZero: "RESERVED_FIELD_NOT_ZERO"
        case .malformedCommand: "MALFORMED_COMMAND"
        case .unsupClusterCommand: "UNSUP_CLUSTER_COMMAND"
        case .unsupGeneralCommand: "UNSUP_GENERAL_COMMAND"
        case .unsupManufClusterCommand: "UNSUP_MANUF_CLUSTER_COMMAND"
        case .unsupManufGeneralCommand: "UNSUP_MANUF_GENERAL_COMMAND"
        case .invalidField: "INVALID_FIELD"
        case .unsupportedAttribute: "UNSUPPORTED_ATTRIBUTE"
        case .invalidValue: "INVALID_VALUE"
        case .readOnly: "READ_ONLY"
        case .insufficientSpace: "INSUFFICIENT_SPACE"
        case .duplicateExists: "DUPLICATE_EXISTS"
        case .notFound: "NOT_FOUND"
        case .unreportableAttribute: "UNREPORTABLE_ATTRIBUTE"
        case .invalidDataType: "INVALID_DATA_TYPE"
        case .invalidSelector: "INVALID_SELECTOR"
        case .writeOnly: "WRITE_ONLY"
        case .inconsistentStartupState: "INCONSISTENT_STARTUP_STATE"
        case .definedOutOfBand: "DEFINED_OUT_OF_BAND"
        case .inconsistent: "INCONSISTENT"
        case .actionDenied: "ACTION_DENIED"
        case .timeout: "TIMEOUT"
        case .abort: "ABORT"
        case .invalidImage: "INVALID_IMAGE"
        case .waitForData: "WAIT_FOR_DATA"
        case .noImageAvailable: "NO_IMAGE_AVAILABLE"
        case .requireMoreImage: "REQUIRE_MORE_IMAGE"
        case .notificationPending: "NOTIFICATION_PENDING"
        case .hardwareFailure: "HARDWARE_FAILURE"
        case .softwareFailure: "SOFTWARE_FAILURE"
        case .calibrationError: "CALIBRATION_ERROR"
        case .unsupportedCluster: "UNSUPPORTED_CLUSTER"
        }
    }

    /// The name for a raw status byte, or its hex for one this build does not know.
    public static func describe(_ raw: UInt8) -> String {
        ZCLStatus(rawValue: raw)?.description ?? "\(hexByte(raw))"
    }
}
