import SMETSCore
import SMETSWire

/// What a ZCL frame is to a device of a given type: which of its behaviours takes it, decoded, or
/// the status it refuses it with. Pure: the executor routes the command to the machine named here.
public enum DeviceCommand: Sendable, Hashable {
    /// Read Attributes of `cluster`.
    case readAttributes(cluster: UInt16, ids: [UInt16])
    /// Write Attributes of a display's Basic cluster: its consumer settings (``ConsumerSettings``),
    /// with the frame's manufacturer code.
    case consumerSettings(WriteAttributes, manufacturerCode: UInt16?)
    case messaging(Messaging.Command)
    case prepayment(Prepayment.Command)
    case changeOfTenancy(PublishChangeOfTenancy)
    case changeOfSupplier(PublishChangeOfSupplier)
    /// A cluster command of OTA Upgrade, for the OTA client or server machine (they decode it).
    case otaUpgrade
    /// An answer to something the device asked (a Read Attributes Response, a Default Response):
    /// consumed, never answered.
    case consumed
    /// The device refuses the frame with this status (a Default Response).
    case refused(ZCLStatus)

    /// Whether a device of `type` serves `cluster` (server side) or is a client of it.
    public static func serves(_ type: DeviceType, cluster: UInt16) -> Bool {
        switch cluster {
        case ZCLClusterID.basic: true
        case ZCLClusterID.metering: type == .esme || type == .gpf || type == .gsme
        case ZCLClusterID.prepayment: type == .esme || type == .gpf || type == .ppmid
        case ZCLClusterID.messaging: type == .esme || type == .gpf || type.isDisplay
        case ZCLClusterID.deviceManagement: type.isDisplay || type == .esme || type == .gpf
        case ZCLClusterID.otaUpgrade: type.isDisplay || type == .chf
        default: false
        }
    }

    /// What `frame`, received on `cluster` of `profile`, is to a device of `type`.
    public init(frame: ZCLFrame, profile: UInt16, cluster: UInt16, deviceType type: DeviceType) {
        guard profile == ZCLProfileID.smartEnergy, Self.serves(type, cluster: cluster) else {
            self = .refused(.unsupportedCluster)
            return
        }
        let header = frame.header
        if header.frameType == .global {
            switch header.commandID {
            case ZCLGlobalCommandID.readAttributes:
                guard let request = try? frame.decodePayload(as: ReadAttributes.self) else { self = .refused(.malformedCommand); return }
                self = .readAttributes(cluster: cluster, ids: request.attributeIDs)
            case ZCLGlobalCommandID.writeAttributes where type.isDisplay && cluster == ZCLClusterID.basic:
                guard let request = try? frame.decodePayload(as: WriteAttributes.self) else { self = .refused(.malformedCommand); return }
                self = .consumerSettings(request, manufacturerCode: header.manufacturerCode)
            case ZCLGlobalCommandID.readAttributesResponse, ZCLGlobalCommandID.defaultResponse:
                self = .consumed
            default:
                self = .refused(.unsupClusterCommand)
            }
            return
        }
        self = Self.clusterCommand(frame, cluster: cluster, type: type)
    }

    private static func clusterCommand(_ frame: ZCLFrame, cluster: UInt16, type: DeviceType) -> DeviceCommand {
        func decode<C: ZCLClusterCommand>(_: C.Type, _ wrap: (C) -> DeviceCommand) -> DeviceCommand {
            guard let command = try? frame.decodePayload(as: C.self) else { return .refused(.malformedCommand) }
            return wrap(command)
        }
        let toClient = frame.header.direction == .serverToClient
        switch (cluster, toClient, frame.header.commandID) {
        // Messaging client: a display shows, cancels and confirms supplier messages.
        case (ZCLClusterID.messaging, true, MessagingCommandID.displayMessage) where type.isDisplay:
            return decode(DisplayMessage.self) { .messaging(.displayMessage($0)) }
        case (ZCLClusterID.messaging, true, MessagingCommandID.cancelMessage) where type.isDisplay:
            return decode(CancelMessage.self) { .messaging(.cancelMessage($0)) }
        case (ZCLClusterID.messaging, true, MessagingCommandID.cancelAllMessages) where type.isDisplay:
            return decode(CancelAllMessages.self) { .messaging(.cancelAllMessages($0)) }
        // Messaging server: the meter repeats its last message and records confirmations.
        case (ZCLClusterID.messaging, false, MessagingCommandID.getLastMessage) where type.isMeterSide:
            return .messaging(.getLastMessage)
        case (ZCLClusterID.messaging, false, MessagingCommandID.messageConfirmation) where type.isMeterSide:
            return decode(MessageConfirmation.self) { .messaging(.messageConfirmation($0)) }
        // Device Management client: tenancy and supplier changes reach the displays.
        case (ZCLClusterID.deviceManagement, true, DeviceManagementCommandID.publishChangeOfTenancy) where type.isDisplay:
            return decode(PublishChangeOfTenancy.self) { .changeOfTenancy($0) }
        case (ZCLClusterID.deviceManagement, true, DeviceManagementCommandID.publishChangeOfSupplier) where type.isDisplay:
            return decode(PublishChangeOfSupplier.self) { .changeOfSupplier($0) }
        // Prepayment server: top-ups and logs.
        case (ZCLClusterID.prepayment, false, PrepaymentCommandID.consumerTopUp) where type.isMeterSide:
            return decode(ConsumerTopUp.self) { .prepayment(.consumerTopUp($0)) }
        case (ZCLClusterID.prepayment, false, PrepaymentCommandID.getTopUpLog) where type.isMeterSide:
            return decode(GetTopUpLog.self) { .prepayment(.getTopUpLog($0)) }
        case (ZCLClusterID.prepayment, false, PrepaymentCommandID.getDebtRepaymentLog) where type.isMeterSide:
            return decode(GetDebtRepaymentLog.self) { .prepayment(.getDebtRepaymentLog($0)) }
        // Prepayment client: a PPMID hears the outcome of its own top-ups.
        case (ZCLClusterID.prepayment, true, PrepaymentCommandID.consumerTopUpResponse) where type == .ppmid:
            return decode(ConsumerTopUpResponse.self) { .prepayment(.consumerTopUpResponse($0)) }
        case (ZCLClusterID.prepayment, true, PrepaymentCommandID.publishTopUpLog) where type == .ppmid:
            return decode(PublishTopUpLog.self) { .prepayment(.publishTopUpLog($0)) }
        case (ZCLClusterID.prepayment, true, PrepaymentCommandID.publishDebtLog) where type == .ppmid:
            return decode(PublishDebtLog.self) { .prepayment(.publishDebtLog($0)) }
        case (ZCLClusterID.otaUpgrade, _, _):
            return .otaUpgrade
        default:
            return .refused(.unsupClusterCommand)
        }
    }
}
