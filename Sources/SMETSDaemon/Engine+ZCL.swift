import SMETSCore
import SMETSDevices
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
    /// The frame's bytes, once `emit` has encoded them (for the trace), so the link does not encode again.
    var encodedZCL: [UInt8]?
    /// The ZCL bytes on the wire.
    public var zcl: [UInt8] { encodedZCL ?? frame.encoded() }

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

extension Engine {
    /// The clusters a device of `type` serves (server side) or acts as client of, for dispatch.
    static func serves(_ type: DeviceType, cluster: UInt16) -> Bool { DeviceCommand.serves(type, cluster: cluster) }

    /// What device `deviceID` does with a ZCL frame `source` sent it on `cluster`. The device's
    /// machines decide (``DeviceCommand``, ``DeviceAttributes``, ``Messaging``, ``Prepayment``); this
    /// reads what they need, commits what they change and frames what they answer.
    public func handleZCL(deviceID: EUI64, source: EUI64, profile: UInt16, cluster: UInt16, zcl: [UInt8]) -> ZCLHandling {
        // One lock for what a read from memory needs: this runs for every frame on the HAN.
        let (found, model) = state.read { state -> (Device?, DeviceModel?) in
            guard let device = state.devices[deviceID] else { return (nil, nil) }
            return (device, state.lab.models[device.modelKey])
        }
        guard let device = found else { return .now([]) }
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
        let header = frame.header
        switch DeviceCommand(frame: frame, profile: profile, cluster: cluster, deviceType: device.type) {
        case .refused(let status):
            return .now(reply(ZCLReply.defaultResponse(to: header, status: status)))
        case .consumed:
            return .now([])
        case let .readAttributes(cluster, ids):
            if cluster == ZCLClusterID.prepayment && device.type.isMeterSide {
                // The balances are durable: read from the store, on the blocking pool.
                return .blocking { [self] in reply(self.prepayment(.readAttributes(ids), device: device, source: source, header: header)) }
            }
            return .now(reply([ZCLReply.readAttributesResponse(to: header, records: attributeRecords(device, model: model, cluster: cluster, ids: ids))]))
        case let .consumerSettings(write, manufacturerCode):
            return .blocking { [self] in reply(self.writeConsumerSettings(write, manufacturerCode: manufacturerCode, device: device, header: header)) }
        case .messaging(let command):
            return .blocking { [self] in reply(self.messaging(command, device: device, header: header)) }
        case .prepayment(let command):
            return .blocking { [self] in reply(self.prepayment(.command(command), device: device, source: source, header: header)) }
        case .changeOfTenancy(let change):
            return .blocking { [self] in
                do {
                    try self.acceptChangeOfTenancy(device: device.id, from: source, change: change)
                    return reply(ZCLReply.defaultResponse(to: header, status: .success))
                } catch {
                    self.logStoreFailure(device: device.id, command: "PublishChangeOfTenancy", status: .failure, error: error)
                    return reply(ZCLReply.defaultResponse(to: header, status: .failure))
                }
            }
        case .changeOfSupplier(let change):
            return .blocking { [self] in
                do {
                    try self.acceptChangeOfSupplier(device: device.id, change: change)
                    return reply(ZCLReply.defaultResponse(to: header, status: .success))
                } catch {
                    self.logStoreFailure(device: device.id, command: "PublishChangeOfSupplier", status: .failure, error: error)
                    return reply(ZCLReply.defaultResponse(to: header, status: .failure))
                }
            }
        case .otaUpgrade:
            return otaCommand(device: device, source: source, frame: frame, reply: reply)
                ?? .now(reply(ZCLReply.defaultResponse(to: header, status: .unsupClusterCommand)))
        }
    }

    static func defaultResponse(to frame: ZCLFrame, status: ZCLStatus) -> [ZCLFrame] {
        ZCLReply.defaultResponse(to: frame.header, status: status)
    }

    /// Attribute values served from memory: identity, OTA client state, metering from the profile.
    /// Reads only what the cluster needs: a Basic read, the HAN's hot path, takes no lock here.
    func attributeRecords(_ device: Device, model: DeviceModel?, cluster: UInt16, ids: [UInt16]) -> [ReadAttributesResponse.Record] {
        var context = DeviceAttributes.Context(device: device, model: model, now: Timestamp(unixMillis: 0))
        if cluster == ZCLClusterID.metering {
            state.read { state in
                context.now = state.clock.now(real: realNow())
                // The GPF mirrors its GSME: it serves the gas meter's consumption.
                if device.type == .gpf { context.meter = state.premises[device.premisesID]?.first { state.devices[$0]?.type == .gsme } }
            }
            context.tenancyStart = tenancyStart(premises: device.premisesID)
        }
        if cluster == ZCLClusterID.otaUpgrade {
            let firmware = firmwareState(device.id)
            context.ota = DeviceAttributes.OTAState(fileOffset: firmware.fileOffset, downloadedFileVersion: firmware.downloadedFileVersion,
                                                    imageUpgradeStatus: firmware.imageUpgradeStatus)
        }
        return DeviceAttributes.records(cluster: cluster, ids: ids, context: context)
    }

    /// One line for a HAN command whose store read or write failed, with the status the device answered.
    func logStoreFailure(device: EUI64, command: String, status: ZCLStatus, error: any Error) {
        logger.error("the store failed; the device answered as one that cannot keep the command", metadata: [
            "event": "han.storeFailed", "device_id": .string(device.description), "command": .string(command),
            "status": .string(status.description), "error": .string("\(error)"),
        ])
    }
}

// MARK: Prepayment

extension Engine {
    enum PrepaymentRequest {
        case command(Prepayment.Command)
        case readAttributes([UInt16])
    }

    /// Carries out the Prepayment machine's answer to `request`: the facts it needs are read, and
    /// its changes committed, in one transaction; a failed read or commit answers what
    /// ``Prepayment/storeFailed(_:)`` says, with a log line, and keeps nothing.
    func prepayment(_ request: PrepaymentRequest, device: Device, source: EUI64, header: ZCLHeader) -> [ZCLFrame] {
        let machine = Prepayment(device: device.id)
        let id = device.id
        let now = self.now()
        let since = tenancyStart(premises: device.premisesID)
        // What the machine is asked when the store gives nothing (the facts of an empty store).
        let fallback: Prepayment.Input
        let name: String
        switch request {
        case .readAttributes(let ids): fallback = .readAttributes(ids, balance: nil); name = "ReadAttributes"
        case .command(let command):
            switch command {
            case .consumerTopUp(let topUp):
                fallback = .consumerTopUp(topUp, from: source, facts: .init(balance: nil, seenByMeter: false, senderPPMID: nil, now: now)); name = "ConsumerTopUp"
            case .getTopUpLog(let request): fallback = .getTopUpLog(request, records: [], tenancyStart: since); name = "GetTopUpLog"
            case .getDebtRepaymentLog(let request): fallback = .getDebtRepaymentLog(request, records: [], tenancyStart: since); name = "GetDebtRepaymentLog"
            case .consumerTopUpResponse(let response): fallback = .consumerTopUpResponse(response); name = "ConsumerTopUpResponse"
            case .publishTopUpLog(let log): fallback = .publishTopUpLog(log, held: []); name = "PublishTopUpLog"
            case .publishDebtLog(let log): fallback = .publishDebtLog(log, held: []); name = "PublishDebtLog"
            }
        }
        let sender = self.device(source)
        var asked = fallback
        let decide = { (tx: StoreTransaction) throws -> [Prepayment.Action] in
            asked = try Self.prepaymentInput(fallback, meter: id, sender: sender, tx: tx)
            let actions = machine.receive(asked)
            for case .persist(let change) in actions { try Self.apply(change, device: id, tx: tx) }
            return actions
        }
        let actions: [Prepayment.Action]
        do {
            actions = fallback.mayChangeStore ? try store.write(decide) : try store.read(decide)
        } catch {
            let instead = machine.storeFailed(asked)
            logStoreFailure(device: id, command: name, status: .failure, error: error)
            return instead.flatMap { action -> [ZCLFrame] in
                if case .respond(let reply) = action { return reply.frames(answering: header) }
                return []
            }
        }
        var frames: [ZCLFrame] = []
        for action in actions {
            switch action {
            case .persist: break
            case .respond(let reply): frames += reply.frames(answering: header)
            case .event(let event): publish(event, device: id, now: now)
            }
        }
        return frames
    }

    func publish(_ event: Prepayment.Event, device id: EUI64, now: Timestamp) {
        switch event {
        case let .toppedUp(value, from):
            events.publish(.prepaymentToppedUp, device: id, time: now, data: ["from": .string(from.description), "value": .int(Int64(value))])
        case let .debtRecovered(amount, outstanding):
            events.publish(.prepaymentDebtRecovered, device: id, time: now, data: ["amount": .int(Int64(amount)), "outstanding": .int(Int64(outstanding))])
        case let .debtAccrued(amount, days, outstanding):
            events.publish(.prepaymentDebtAccrued, device: id, time: now, data: ["amount": .int(Int64(amount)), "days": .int(days),
                                                                                 "outstanding": .int(Int64(outstanding))], level: .debug)
        }
    }

    /// `input` with the facts the store holds.
    static func prepaymentInput(_ input: Prepayment.Input, meter: EUI64, sender: Device?, tx: StoreTransaction) throws -> Prepayment.Input {
        switch input {
        case let .consumerTopUp(topUp, source, facts):
            let code = String(decoding: topUp.topUpCode, as: UTF8.self)
            let ppmid = try sender.flatMap { sender -> (id: EUI64, seen: Bool)? in
                guard sender.type == .ppmid else { return nil }
                return (sender.id, try tx.topUpExists(device: sender.id, code: code))
            }
            return .consumerTopUp(topUp, from: source, facts: .init(balance: try tx.prepayment(device: meter).map(Prepayment.Balance.init),
                                                                    seenByMeter: try tx.topUpExists(device: meter, code: code),
                                                                    senderPPMID: ppmid, now: facts.now))
        case let .wanTopUp(code, value, source, from, facts):
            return .wanTopUp(code: code, value: value, source: source, from: from,
                             facts: .init(balance: try tx.prepayment(device: meter).map(Prepayment.Balance.init),
                                          seenByMeter: try tx.topUpExists(device: meter, code: code), senderPPMID: nil, now: facts.now))
        case let .getTopUpLog(request, _, since):
            let query = Prepayment.query(request)
            let records = try tx.topUps(device: meter, notAfter: query.notAfter, limit: query.limit)
            return .getTopUpLog(request, records: records.map { .init(code: $0.code, amount: $0.amount, time: $0.time, source: $0.source) }, tenancyStart: since)
        case let .getDebtRepaymentLog(request, _, since):
            let query = Prepayment.query(request)
            let records = try tx.debtRecords(device: meter, notAfter: query.notAfter, limit: query.limit)
            return .getDebtRepaymentLog(request, records: records.map { .init(time: $0.time, amount: $0.amount, debtType: $0.debtType, outstanding: $0.outstanding) },
                                        tenancyStart: since)
        case let .readAttributes(ids, _):
            return .readAttributes(ids, balance: try tx.prepayment(device: meter).map(Prepayment.Balance.init))
        case let .publishTopUpLog(log, _):
            // The PPMID's own log: which of the sent UTRNs it holds already.
            let held = try Set(log.topUps.map { String(decoding: $0.topUpCode, as: UTF8.self) }.filter { try tx.topUpExists(device: meter, code: $0) })
            return .publishTopUpLog(log, held: held)
        case let .publishDebtLog(log, _):
            let held = try tx.debtRecords(device: meter, limit: Int.max).map {
                Prepayment.DebtCollection(time: $0.time, amount: $0.amount, debtType: $0.debtType, outstanding: $0.outstanding)
            }
            return .publishDebtLog(log, held: Set(held))
        case .consumerTopUpResponse, .daysEnded, .configureDebt:
            return input
        }
    }

    static func apply(_ change: Prepayment.Change, device: EUI64, tx: StoreTransaction) throws {
        switch change {
        case .balance(let balance):
            try tx.savePrepayment(PrepaymentState(balance), device: device)
        case let .topUp(topUp, owner):
            _ = try tx.saveTopUp(device: owner, code: topUp.code, amount: topUp.amount, time: topUp.time, source: topUp.source)
        case .debtCollections(let collections):
            for entry in collections {
                try tx.saveDebtRecord(device: device, time: entry.time, amount: entry.amount, debtType: entry.debtType, outstanding: entry.outstanding)
            }
        }
    }
}

extension Prepayment.Balance {
    init(_ state: PrepaymentState) {
        self.init(credit: state.credit, emergencyCredit: state.emergencyCredit, debt: state.debt, debtPerDay: state.debtPerDay,
                  recoveryPercent: state.recoveryPercent)
    }
}

extension PrepaymentState {
    init(_ balance: Prepayment.Balance) {
        self.init(credit: balance.credit, emergencyCredit: balance.emergencyCredit, debt: balance.debt, debtPerDay: balance.debtPerDay,
                  recoveryPercent: balance.recoveryPercent)
    }
}

// MARK: Messaging

extension Engine {
    /// Carries out the Messaging machine's answer to `command`, as ``prepayment(_:device:source:header:)``
    /// does for its machine.
    func messaging(_ command: Messaging.Command, device: Device, header: ZCLHeader) -> [ZCLFrame] {
        let now = self.now()
        let id = device.id
        let since = tenancyStart(premises: device.premisesID)
        let input: Messaging.Input
        let name: String
        switch command {
        case .displayMessage(let message): input = .displayMessage(message, now: now); name = "DisplayMessage"
        case .cancelMessage(let cancel): input = .cancelMessage(cancel, held: false); name = "CancelMessage"
        case .cancelAllMessages(let cancel): input = .cancelAllMessages(cancel); name = "CancelAllMessages"
        case .getLastMessage: input = .getLastMessage(sent: [], tenancyStart: since); name = "GetLastMessage"
        case .messageConfirmation(let confirmation): input = .messageConfirmation(confirmation, now: now); name = "MessageConfirmation"
        }
        let machine = Messaging(device: id)
        let actions: [Messaging.Action]
        do {
            actions = try runMessaging(machine, input, device: id)
        } catch {
            logStoreFailure(device: id, command: name, status: .failure, error: error)
            return machine.storeFailed(input).flatMap { action -> [ZCLFrame] in
                if case .respond(let reply) = action { return reply.frames(answering: header) }
                return []
            }
        }
        var frames: [ZCLFrame] = []
        for action in actions {
            switch action {
            case .persist, .send: break
            case .respond(let reply): frames += reply.frames(answering: header)
            case .event(.displayed(let messageID)):
                events.publish(.messageDisplayed, device: id, time: now, data: ["messageId": .int(Int64(messageID))])
            }
        }
        return frames
    }

    /// Reads the facts `input` needs, asks the machine and commits its changes, in one transaction.
    func runMessaging(_ machine: Messaging, _ input: Messaging.Input, device id: EUI64) throws -> [Messaging.Action] {
        let decide = { (tx: StoreTransaction) throws -> [Messaging.Action] in
            let asked: Messaging.Input = switch input {
            case let .cancelMessage(cancel, _):
                .cancelMessage(cancel, held: try tx.messages(device: id).contains { $0.messageID == cancel.messageID })
            case let .getLastMessage(_, since):
                .getLastMessage(sent: try tx.messages(device: id).map {
                    Messaging.Message(messageID: $0.messageID, control: $0.control, startTime: $0.startTime,
                                      durationMinutes: $0.durationMinutes, text: $0.text, receivedAt: $0.receivedAt)
                }, tenancyStart: since)
            default: input
            }
            let actions = machine.receive(asked)
            for case .persist(let change) in actions { try Self.apply(change, device: id, tx: tx) }
            return actions
        }
        return input.mayChangeStore ? try store.write(decide) : try store.read(decide)
    }

    static func apply(_ change: Messaging.Change, device: EUI64, tx: StoreTransaction) throws {
        switch change {
        case .save(let message):
            try tx.saveMessage(StoredMessage(messageID: message.messageID, control: message.control, startTime: message.startTime,
                                             durationMinutes: message.durationMinutes, text: message.text, receivedAt: message.receivedAt), device: device)
        case let .confirm(messageID, time): _ = try tx.confirmMessage(device: device, messageID: messageID, at: time)
        case .delete(let messageID): _ = try tx.deleteMessage(device: device, messageID: messageID)
        case .deleteAll: _ = try tx.clear([.supplierMessages], device: device)
        }
    }
}

extension Device {
    var isMeterSide: Bool { type.isMeterSide }
}
