import SMETSCore
import SMETSWire

/// What a device answers to one ZCL command it received, before it is framed.
///
/// A cluster command goes back with the request's sequence number and default responses disabled;
/// a status goes back as a Default Response (a SUCCESS is left out when the request disabled it).
public enum ZCLReply: Sendable, Hashable {
    /// A Default Response with this status.
    case status(ZCLStatus)
    /// Read Attributes Response: as many of the records as fit in one HAN frame (the ZCL's rule
    /// for a response that would not fit); the rig asks again for the rest.
    case attributes([ReadAttributesResponse.Record])
    case consumerTopUpResponse(ConsumerTopUpResponse)
    case publishTopUpLog(PublishTopUpLog)
    case publishDebtLog(PublishDebtLog)
    case displayMessage(DisplayMessage)
    case messageConfirmation(MessageConfirmation)

    /// The frames that carry this reply to `request` (none for a SUCCESS the request did not want).
    public func frames(answering request: ZCLHeader) -> [ZCLFrame] {
        let sequence = request.sequenceNumber
        switch self {
        case .status(let status): return Self.defaultResponse(to: request, status: status)
        case .attributes(let records): return [Self.readAttributesResponse(to: request, records: records)]
        case .consumerTopUpResponse(let command): return [ZCLFrame(command, sequenceNumber: sequence, disableDefaultResponse: true)]
        case .publishTopUpLog(let command): return [ZCLFrame(command, sequenceNumber: sequence, disableDefaultResponse: true)]
        case .publishDebtLog(let command): return [ZCLFrame(command, sequenceNumber: sequence, disableDefaultResponse: true)]
        case .displayMessage(let command): return [ZCLFrame(command, sequenceNumber: sequence, disableDefaultResponse: true)]
        case .messageConfirmation(let command): return [ZCLFrame(command, sequenceNumber: sequence, disableDefaultResponse: true)]
        }
    }

    /// A Default Response to `request` with `status`; none for a SUCCESS the request disabled, and
    /// none to a Default Response (the ZCL never answers one).
    public static func defaultResponse(to request: ZCLHeader, status: ZCLStatus) -> [ZCLFrame] {
        if status == .success && request.disableDefaultResponse { return [] }
        if request.frameType == .global && request.commandID == ZCLGlobalCommandID.defaultResponse { return [] }
        let header = request.response(frameType: .global, commandID: ZCLGlobalCommandID.defaultResponse)
        return [ZCLFrame(header: header, payload: DefaultResponse(commandID: request.commandID, statusCode: status.rawValue).encoded())]
    }

    /// Read Attributes Response to `request`: the records in order, as many as fit in one HAN frame.
    /// Each record is encoded once, straight into the payload (this runs for every read on the HAN).
    public static func readAttributesResponse(to request: ZCLHeader, records: [ReadAttributesResponse.Record]) -> ZCLFrame {
        let header = request.response(frameType: .global, commandID: ZCLGlobalCommandID.readAttributesResponse)
        let budget = HANData.maxZCLLength - header.encodedLength
        var writer = WireWriter(capacity: min(budget, 16 * records.count))
        for record in records {
            let before = writer.count
            record.encode(into: &writer)
            if writer.count > budget {
                writer.truncate(to: before)
                break
            }
        }
        return ZCLFrame(header: header, payload: writer.bytes)
    }
}
