import SMETSCore
import SMETSRPC
import SMETSStore
import SMETSWire

/// A ZCL frame a device sends: to whom, on which cluster.
public struct OutgoingZCL: Sendable {
    public var from: EUI64
    public var to: EUI64
    public var cluster: UInt16
    public var frame: ZCLFrame
    /// The endpoint it goes to: a reply goes back to the endpoint the request came from.
    public var destinationEndpoint: UInt8 = 1

    public init(from: EUI64, to: EUI64, cluster: UInt16, frame: ZCLFrame, destinationEndpoint: UInt8 = 1) {
        self.from = from; self.to = to; self.cluster = cluster; self.frame = frame; self.destinationEndpoint = destinationEndpoint
    }
}

/// How a device answers a frame: at once from memory (reads, refusals) or after a durable change,
/// which must run on the blocking pool.
public enum ZCLHandling: Sendable {
    case now([OutgoingZCL])
    case blocking(@Sendable () -> [OutgoingZCL])
}

/// ZCL values the Prepayment cluster's ConsumerTopUpResponse carries.
enum TopUpResult: UInt8 {
    case accepted = 0x00, rejectedInvalid = 0x01, rejectedDuplicate = 0x02, rejectedError = 0x03
}

/// UTRNs as the emulator reads them: 20 decimal digits whose last 5 are the value in pence.
/// (A real UTRN is encrypted to the meter; the emulator needs only a value and uniqueness.)
enum UTRN {
    static func value(of code: [UInt8]) -> Int32? {
        guard code.count == 20, code.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return code.suffix(5).reduce(0) { $0 * 10 + Int32($1 - 0x30) }
    }
}

extension Engine {
    /// The clusters a device of `type` serves (server side) or acts as client of, for dispatch.
    static func serves(_ type: DeviceType, cluster: UInt16) -> Bool {
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

    /// What device `deviceID` does with a ZCL frame `source` sent it on `cluster`.
    public func handleZCL(deviceID: EUI64, source: EUI64, profile: UInt16, cluster: UInt16, zcl: [UInt8]) -> ZCLHandling {
        guard let device = device(deviceID) else { return .now([]) }
        let frame: ZCLFrame
        do {
            frame = try ZCLFrame(decoding: zcl)
        } catch {
            // The header itself is short (a manufacturer-specific bit with no code): answer with the
            // sequence number we can see, so the rig learns why.
            let sequence = zcl.count > 1 ? zcl[1] : 0
            let header = ZCLHeader(frameType: .global, manufacturerCode: nil, direction: .serverToClient,
                                   disableDefaultResponse: true, sequenceNumber: sequence, commandID: ZCLGlobalCommandID.defaultResponse)
            let reply = ZCLFrame(header: header, payload: DefaultResponse(commandID: zcl.count > 2 ? zcl[2] : 0, statusCode: ZCLStatus.malformedCommand.rawValue).encoded())
            return .now([OutgoingZCL(from: deviceID, to: source, cluster: cluster, frame: reply)])
        }
        let reply: @Sendable ([ZCLFrame]) -> [OutgoingZCL] = { frames in frames.map { OutgoingZCL(from: deviceID, to: source, cluster: cluster, frame: $0) } }
        guard profile == ZCLProfileID.smartEnergy, Self.serves(device.type, cluster: cluster) else {
            return .now(reply(Self.defaultResponse(to: frame, status: .unsupportedCluster)))
        }
        if frame.header.frameType == .global {
            switch frame.header.commandID {
            case ZCLGlobalCommandID.readAttributes:
                guard let request = try? frame.decodePayload(as: ReadAttributes.self) else {
                    return .now(reply(Self.defaultResponse(to: frame, status: .malformedCommand)))
                }
                if cluster == ZCLClusterID.prepayment && device.type != .ppmid {
                    return .blocking { [self] in reply([self.readAttributesResponse(to: frame, records: self.prepaymentRecords(device, request.attributeIDs))]) }
                }
                return .now(reply([readAttributesResponse(to: frame, records: attributeRecords(device, cluster: cluster, ids: request.attributeIDs))]))
            case ZCLGlobalCommandID.readAttributesResponse, ZCLGlobalCommandID.defaultResponse:
                return .now([])  // answers to what a device asked: consumed, never answered
            default:
                return .now(reply(Self.defaultResponse(to: frame, status: .unsupClusterCommand)))
            }
        }
        return clusterCommand(device: device, source: source, cluster: cluster, frame: frame, reply: reply)
    }

    static func defaultResponse(to frame: ZCLFrame, status: ZCLStatus) -> [ZCLFrame] {
        if status == .success && frame.header.disableDefaultResponse { return [] }
        if frame.header.frameType == .global && frame.header.commandID == ZCLGlobalCommandID.defaultResponse { return [] }
        let header = frame.header.response(frameType: .global, commandID: ZCLGlobalCommandID.defaultResponse)
        return [ZCLFrame(header: header, payload: DefaultResponse(commandID: frame.header.commandID, statusCode: status.rawValue).encoded())]
    }

    /// The answer to Read Attributes, with as many records as fit in one HAN frame (as the ZCL asks
    /// of a response that would not fit); the rig asks again for the rest.
    func readAttributesResponse(to frame: ZCLFrame, records: [ReadAttributesResponse.Record]) -> ZCLFrame {
        let header = frame.header.response(frameType: .global, commandID: ZCLGlobalCommandID.readAttributesResponse)
        var budget = HANData.maxZCLLength - header.encodedLength
        var fitting: [ReadAttributesResponse.Record] = []
        for record in records {
            let size = ReadAttributesResponse(records: [record]).encoded().count
            guard size <= budget else { break }
            budget -= size
            fitting.append(record)
        }
        return ZCLFrame(header: header, payload: ReadAttributesResponse(records: fitting).encoded())
    }

    /// Attribute values served from memory: identity, OTA client state, metering from the profile.
    func attributeRecords(_ device: Device, cluster: UInt16, ids: [UInt16]) -> [ReadAttributesResponse.Record] {
        // The device reports the firmware it runs (han-link.md rev 1.1); a fictitious CPL identity
        // lives only in the DCC's inventory.
        let (model, now) = self.state.withLock { state in
            (state.lab.models[device.modelKey], state.clock.now(real: realNow()))
        }
        let firmware = firmwareState(device.id)
        return ids.map { id in
            guard let value = attributeValue(device, model: model, now: now, firmware: firmware, cluster: cluster, id: id) else {
                return .status(id, .unsupportedAttribute)
            }
            return .value(id, value)
        }
    }

    func attributeValue(_ device: Device, model: DeviceModel?, now: Timestamp,
                        firmware: DeviceFirmwareState, cluster: UInt16, id: UInt16) -> ZCLValue? {
        switch (cluster, id) {
        case (ZCLClusterID.basic, BasicAttribute.zclVersion): return .uint8(8)
        case (ZCLClusterID.basic, BasicAttribute.hwVersion): return .uint8(UInt8(clamping: model?.hardwareVersion ?? 0))
        case (ZCLClusterID.basic, BasicAttribute.manufacturerName): return .charString(model?.manufacturer.name ?? "")
        case (ZCLClusterID.basic, BasicAttribute.modelIdentifier): return .charString(model?.modelName ?? device.modelKey)
        case (ZCLClusterID.basic, BasicAttribute.dateCode): return .charString(model?.dateCode ?? "")
        case (ZCLClusterID.basic, BasicAttribute.powerSource): return .enum8(model?.powerSource ?? 1)
        case (ZCLClusterID.basic, BasicAttribute.swBuildID): return .charString(device.firmwareVersion.hex)
        case (ZCLClusterID.otaUpgrade, OTAAttribute.upgradeServerID): return .ieeeAddress(device.hub ?? EUI64(UInt64.max))
        case (ZCLClusterID.otaUpgrade, OTAAttribute.fileOffset): return .uint32(firmware.fileOffset)
        case (ZCLClusterID.otaUpgrade, OTAAttribute.currentFileVersion): return .uint32(device.firmwareVersion.rawValue)
        case (ZCLClusterID.otaUpgrade, OTAAttribute.downloadedFileVersion): return .uint32(firmware.downloadedFileVersion ?? 0xFFFF_FFFF)
        case (ZCLClusterID.otaUpgrade, OTAAttribute.imageUpgradeStatus): return .enum8(firmware.imageUpgradeStatus)
        case (ZCLClusterID.otaUpgrade, OTAAttribute.manufacturerID): return .uint16(model?.manufacturer.numericCode ?? 0)
        case (ZCLClusterID.otaUpgrade, OTAAttribute.imageTypeID): return .uint16(model?.numericImageType ?? 0)
        default: break
        }
        guard cluster == ZCLClusterID.metering else { return nil }
        let isGas = device.type == .gsme || device.type == .gpf
        // The GPF mirrors its GSME: it serves the gas meter's consumption.
        let meter = device.type == .gpf ? (self.state.withLock { state in
            state.premises[device.premisesID]?.first { state.devices[$0]?.type == .gsme }
        } ?? device.id) : device.id
        let meterType: DeviceType = isGas ? .gsme : .esme
        let since = tenancyStart(premises: device.premisesID)
        switch id {
        case MeteringAttribute.currentSummationDelivered:
            return .uint48(UInt64(max(0, LoadProfile.cumulative(device: meter, type: meterType, at: now))))
        case MeteringAttribute.status: return .bitmap8(0)
        case MeteringAttribute.unitOfMeasure: return .enum8(isGas ? 0x01 : 0x00)  // m3 or kWh
        case MeteringAttribute.multiplier: return .uint24(1)
        case MeteringAttribute.divisor: return .uint24(1000)  // Wh (or litres) on the wire, kWh (or m3) shown
        case MeteringAttribute.meteringDeviceType: return .bitmap8(isGas ? 0x01 : 0x00)
        case MeteringAttribute.meterSerialNumber: return .octetString(Array(meter.description.replacingOccurrences(of: "-", with: "").utf8))
        case MeteringAttribute.instantaneousDemand: return .int24(Int32(clamping: LoadProfile.instantaneousDemand(device: meter, type: meterType, at: now)))
        case 0x0401:  // CurrentDayConsumptionDelivered, from midnight or the Change of Tenancy, whichever is later
            let dayStart = max(Timestamp.startOfDay(now.dayNumber), since ?? Timestamp(unixMillis: 0))
            return .uint24(UInt32(clamping: LoadProfile.cumulative(device: meter, type: meterType, at: now) - LoadProfile.cumulative(device: meter, type: meterType, at: dayStart)))
        case 0x0403:  // PreviousDayConsumptionDelivered: of the new occupant only, from the Change of Tenancy on
            return .uint24(UInt32(clamping: LoadProfile.dailyTotal(device: meter, type: meterType, day: now.dayNumber - 1, since: since)))
        default: return nil
        }
    }

    func prepaymentRecords(_ device: Device, _ ids: [UInt16]) -> [ReadAttributesResponse.Record] {
        let state = (try? store.read { try $0.prepayment(device: device.id) }) ?? nil
        return ids.map { id in
            guard let state else { return .status(id, .unsupportedAttribute) }
            switch id {
            case PrepaymentAttribute.creditRemaining: return .value(id, .int32(state.credit))
            case PrepaymentAttribute.emergencyCreditRemaining: return .value(id, .int32(state.emergencyCredit))
            case PrepaymentAttribute.accumulatedDebt: return .value(id, .int32(state.debt))
            case 0x0000: return .value(id, .bitmap16(0x0001))  // PaymentControlConfiguration: prepayment mode
            default: return .status(id, .unsupportedAttribute)
            }
        }
    }

    /// Cluster-specific commands, by cluster, direction and command ID.
    func clusterCommand(device: Device, source: EUI64, cluster: UInt16, frame: ZCLFrame,
                        reply: @escaping @Sendable ([ZCLFrame]) -> [OutgoingZCL]) -> ZCLHandling {
        let header = frame.header
        let toClient = header.direction == .serverToClient
        let unsupported = ZCLHandling.now(reply(Self.defaultResponse(to: frame, status: .unsupClusterCommand)))
        let malformed = ZCLHandling.now(reply(Self.defaultResponse(to: frame, status: .malformedCommand)))
        let id = device.id

        switch (cluster, toClient, header.commandID) {
        // Messaging client: a display shows, cancels and confirms supplier messages.
        case (ZCLClusterID.messaging, true, MessagingCommandID.displayMessage) where device.type.isDisplay:
            guard let message = try? frame.decodePayload(as: DisplayMessage.self) else { return malformed }
            return .blocking { [self] in
                let now = self.now()
                do {
                    try store.write { tx in
                        try tx.saveMessage(StoredMessage(messageID: message.messageID, control: message.messageControl, startTime: message.startTime,
                                                         durationMinutes: message.durationMinutes, text: message.message ?? "", receivedAt: now), device: id)
                    }
                } catch { return reply(Self.defaultResponse(to: frame, status: .failure)) }
                events.publish(.messageDisplayed, device: id, time: now, data: ["messageId": .int(Int64(message.messageID))])
                // Message control bit 7: the supplier asked for a confirmation.
                if message.messageControl & 0x80 != 0 {
                    let confirmation = MessageConfirmation(messageID: message.messageID, confirmationTime: now.zigbeeUTC)
                    let confirmFrame = ZCLFrame(confirmation, sequenceNumber: header.sequenceNumber, disableDefaultResponse: true)
                    _ = try? store.write { try $0.confirmMessage(device: id, messageID: message.messageID, at: now) }
                    return reply([confirmFrame])
                }
                return reply(Self.defaultResponse(to: frame, status: .success))
            }
        case (ZCLClusterID.messaging, true, MessagingCommandID.cancelMessage) where device.type.isDisplay:
            guard let cancel = try? frame.decodePayload(as: CancelMessage.self) else { return malformed }
            return .blocking { [self] in
                let removed = (try? store.write { try $0.deleteMessage(device: id, messageID: cancel.messageID) }) ?? false
                return reply(Self.defaultResponse(to: frame, status: removed ? .success : .notFound))
            }
        case (ZCLClusterID.messaging, true, MessagingCommandID.cancelAllMessages) where device.type.isDisplay:
            guard (try? frame.decodePayload(as: CancelAllMessages.self)) != nil else { return malformed }
            return .blocking { [self] in
                _ = try? store.write { _ = try $0.clear([.supplierMessages], device: id) }
                return reply(Self.defaultResponse(to: frame, status: .success))
            }
        // Messaging server: the meter answers GetLastMessage with the last message it sent.
        case (ZCLClusterID.messaging, false, MessagingCommandID.getLastMessage) where device.type.isMeterSide:
            return .blocking { [self] in
                let since = self.tenancyStart(premises: device.premisesID)
                guard let last = (try? store.read { try $0.messages(device: id) })?.last(where: { since == nil || $0.receivedAt >= since! }) else {
                    return reply(Self.defaultResponse(to: frame, status: .notFound))
                }
                let display = DisplayMessage(messageID: last.messageID, messageControl: last.control, startTime: last.startTime,
                                             durationMinutes: last.durationMinutes, message: last.text)
                return reply([ZCLFrame(display, sequenceNumber: header.sequenceNumber, disableDefaultResponse: true)])
            }
        case (ZCLClusterID.messaging, false, MessagingCommandID.messageConfirmation) where device.type.isMeterSide:
            guard let confirmation = try? frame.decodePayload(as: MessageConfirmation.self) else { return malformed }
            return .blocking { [self] in
                _ = try? store.write { try $0.confirmMessage(device: id, messageID: confirmation.messageID, at: self.now()) }
                return reply(Self.defaultResponse(to: frame, status: .success))
            }
        // Device Management client: tenancy and supplier changes reach the displays.
        case (ZCLClusterID.deviceManagement, true, DeviceManagementCommandID.publishChangeOfTenancy) where device.type.isDisplay:
            guard let change = try? frame.decodePayload(as: PublishChangeOfTenancy.self) else { return malformed }
            return .blocking { [self] in
                do {
                    try self.acceptChangeOfTenancy(device: id, from: source, change: change)
                    return reply(Self.defaultResponse(to: frame, status: .success))
                } catch {
                    return reply(Self.defaultResponse(to: frame, status: .failure))
                }
            }
        case (ZCLClusterID.deviceManagement, true, DeviceManagementCommandID.publishChangeOfSupplier) where device.type.isDisplay:
            guard let change = try? frame.decodePayload(as: PublishChangeOfSupplier.self) else { return malformed }
            return .blocking { [self] in
                do {
                    try self.acceptChangeOfSupplier(device: id, change: change)
                    return reply(Self.defaultResponse(to: frame, status: .success))
                } catch {
                    return reply(Self.defaultResponse(to: frame, status: .failure))
                }
            }
        // Prepayment server: top-ups and logs.
        case (ZCLClusterID.prepayment, false, PrepaymentCommandID.consumerTopUp) where device.isMeterSide:
            guard let topUp = try? frame.decodePayload(as: ConsumerTopUp.self) else { return malformed }
            return .blocking { [self] in
                let response = self.applyTopUp(meter: id, from: source, topUp: topUp)
                return reply([ZCLFrame(response, sequenceNumber: header.sequenceNumber, disableDefaultResponse: true)])
            }
        case (ZCLClusterID.prepayment, false, PrepaymentCommandID.getTopUpLog) where device.isMeterSide:
            guard let request = try? frame.decodePayload(as: GetTopUpLog.self) else { return malformed }
            return .blocking { [self] in
                let latest = request.latestEndTime == 0xFFFF_FFFF ? nil : Timestamp(zigbeeUTC: request.latestEndTime)
                let since = self.tenancyStart(premises: device.premisesID)
                let records = ((try? store.read { try $0.topUps(device: id, notAfter: latest, limit: Int(request.numberOfRecords)) }) ?? [])
                    .filter { since == nil || $0.time >= since! }
                let log = PublishTopUpLog(topUps: records.map { .init(topUpCode: Array($0.code.utf8), topUpAmount: $0.amount, topUpTime: $0.time.zigbeeUTC) })
                return reply([ZCLFrame(log, sequenceNumber: header.sequenceNumber, disableDefaultResponse: true)])
            }
        case (ZCLClusterID.prepayment, false, PrepaymentCommandID.getDebtRepaymentLog) where device.isMeterSide:
            guard let request = try? frame.decodePayload(as: GetDebtRepaymentLog.self) else { return malformed }
            return .blocking { [self] in
                let latest = request.latestEndTime == 0xFFFF_FFFF ? nil : Timestamp(zigbeeUTC: request.latestEndTime)
                let since = self.tenancyStart(premises: device.premisesID)
                let records = ((try? store.read { try $0.debtRecords(device: id, notAfter: latest, limit: Int(request.numberOfDebts)) }) ?? [])
                    .filter { (since == nil || $0.time >= since!) && (request.debtType == 0xFF || $0.debtType == request.debtType) }
                let log = PublishDebtLog(collections: records.map {
                    .init(collectionTime: $0.time.zigbeeUTC, amountCollected: $0.amount, debtType: $0.debtType, outstandingDebt: $0.outstanding)
                })
                return reply([ZCLFrame(log, sequenceNumber: header.sequenceNumber, disableDefaultResponse: true)])
            }
        // Prepayment client: a PPMID keeps the outcome of its own top-ups.
        case (ZCLClusterID.prepayment, true, PrepaymentCommandID.consumerTopUpResponse) where device.type == .ppmid:
            guard (try? frame.decodePayload(as: ConsumerTopUpResponse.self)) != nil else { return malformed }
            return .now(reply(Self.defaultResponse(to: frame, status: .success)))
        case (ZCLClusterID.prepayment, true, PrepaymentCommandID.publishTopUpLog) where device.type == .ppmid:
            guard (try? frame.decodePayload(as: PublishTopUpLog.self)) != nil else { return malformed }
            return .now(reply(Self.defaultResponse(to: frame, status: .success)))
        case (ZCLClusterID.prepayment, true, PrepaymentCommandID.publishDebtLog) where device.type == .ppmid:
            guard let log = try? frame.decodePayload(as: PublishDebtLog.self) else { return malformed }
            return .blocking { [self] in
                _ = try? store.write { tx in
                    for entry in log.collections {
                        try tx.saveDebtRecord(device: id, time: Timestamp(zigbeeUTC: entry.collectionTime), amount: entry.amountCollected,
                                              debtType: entry.debtType, outstanding: entry.outstandingDebt)
                    }
                }
                return reply(Self.defaultResponse(to: frame, status: .success))
            }
        default:
            if cluster == ZCLClusterID.otaUpgrade, let handled = otaCommand(device: device, source: source, frame: frame, reply: reply) {
                return handled
            }
            return unsupported
        }
    }

    /// Applies a ConsumerTopUp at a meter: a valid, unseen UTRN raises the credit and enters the
    /// meter's top-up log (and, when a PPMID sent it, the PPMID's own history), in one transaction.
    func applyTopUp(meter: EUI64, from source: EUI64, topUp: ConsumerTopUp) -> ConsumerTopUpResponse {
        let now = self.now()
        let code = String(decoding: topUp.topUpCode, as: UTF8.self)
        let sender = device(source)
        guard let value = UTRN.value(of: topUp.topUpCode) else {
            let credit = ((try? store.read { try $0.prepayment(device: meter) }) ?? nil)?.credit ?? 0
            return ConsumerTopUpResponse(result: TopUpResult.rejectedInvalid.rawValue, topUpValue: 0, sourceOfTopUp: topUp.originatingDevice, creditRemaining: credit)
        }
        do {
            let outcome = try store.write { tx -> (TopUpResult, Int32) in
                var state = try tx.prepayment(device: meter) ?? PrepaymentState(credit: 0, emergencyCredit: 0, debt: 0)
                if try tx.topUpExists(device: meter, code: code) { return (.rejectedDuplicate, state.credit) }
                state.credit = state.credit &+ value
                try tx.savePrepayment(state, device: meter)
                _ = try tx.saveTopUp(device: meter, code: code, amount: value, time: now, source: topUp.originatingDevice)
                if let sender, sender.type == .ppmid, try !tx.topUpExists(device: sender.id, code: code) {
                    _ = try tx.saveTopUp(device: sender.id, code: code, amount: value, time: now, source: topUp.originatingDevice)
                }
                return (.accepted, state.credit)
            }
            if outcome.0 == .accepted {
                events.publish(.prepaymentToppedUp, device: meter, time: now, data: ["from": .string(source.description), "value": .int(Int64(value))])
            }
            return ConsumerTopUpResponse(result: outcome.0.rawValue, topUpValue: outcome.0 == .accepted ? value : 0,
                                         sourceOfTopUp: topUp.originatingDevice, creditRemaining: outcome.1)
        } catch {
            return ConsumerTopUpResponse(result: TopUpResult.rejectedError.rawValue, topUpValue: 0, sourceOfTopUp: topUp.originatingDevice, creditRemaining: 0)
        }
    }
}

extension Device {
    var isMeterSide: Bool { type.isMeterSide }
}
