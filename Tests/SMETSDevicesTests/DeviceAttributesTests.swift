import SMETSCore
import SMETSWire
import Testing
@testable import SMETSDevices

@Suite("DeviceAttributes, DeviceCommand and ZCLReply")
struct DeviceAttributesTests {
    static let now = Timestamp(unixMillis: 1_800_000_000_000)
    static let hub = EUI64("00-DB-12-34-56-78-00-01")!

    static func device(_ type: DeviceType, id: UInt64 = 0x00DB_1234_5678_0005) -> Device {
        Device(id: EUI64(id), type: type, premisesID: "P1", modelKey: "key", owner: "MAP", preNotified: .smets2, status: .commissioned,
               hub: hub, firmwareVersion: FirmwareVersion(0x0102_0300), region: .north)
    }

    static let model = DeviceModel(key: "key", type: .ppmid, manufacturer: .init(code: "1234", name: "Acme"), modelId: "00000001",
                                   modelName: "Acme PPMID", hardwareVersion: 300, firmwareVersion: FirmwareVersion(0x0102_0300),
                                   otaImageType: "0001", smetsVersions: [.smets2], powerSource: 4, dateCode: "20260101")

    static func value(_ cluster: UInt16, _ id: UInt16, _ context: DeviceAttributes.Context) -> ZCLValue? {
        DeviceAttributes.value(cluster: cluster, id: id, context: context)
    }

    @Test("Basic: identity from the model, the running firmware as SWBuildID; the key when the model is gone")
    func basic() {
        let context = DeviceAttributes.Context(device: Self.device(.ppmid), model: Self.model, now: Self.now)
        #expect(Self.value(ZCLClusterID.basic, BasicAttribute.zclVersion, context) == .uint8(8))
        #expect(Self.value(ZCLClusterID.basic, BasicAttribute.hwVersion, context) == .uint8(255))  // 300 clamps to a uint8
        #expect(Self.value(ZCLClusterID.basic, BasicAttribute.manufacturerName, context) == .charString("Acme"))
        #expect(Self.value(ZCLClusterID.basic, BasicAttribute.modelIdentifier, context) == .charString("Acme PPMID"))
        #expect(Self.value(ZCLClusterID.basic, BasicAttribute.dateCode, context) == .charString("20260101"))
        #expect(Self.value(ZCLClusterID.basic, BasicAttribute.powerSource, context) == .enum8(4))
        #expect(Self.value(ZCLClusterID.basic, BasicAttribute.swBuildID, context) == .charString("01020300"))
        #expect(Self.value(ZCLClusterID.basic, 0x7777, context) == nil)
        let orphan = DeviceAttributes.Context(device: Self.device(.ppmid), model: nil, now: Self.now)
        #expect(Self.value(ZCLClusterID.basic, BasicAttribute.modelIdentifier, orphan) == .charString("key"))
        #expect(Self.value(ZCLClusterID.basic, BasicAttribute.manufacturerName, orphan) == .charString(""))
        #expect(Self.value(ZCLClusterID.basic, BasicAttribute.powerSource, orphan) == .enum8(1))
    }

    @Test("OTA Upgrade: the client state, the hub as server (all ones when not joined)")
    func ota() {
        var device = Self.device(.ppmid)
        let context = DeviceAttributes.Context(device: device, model: Self.model,
                                               ota: .init(fileOffset: 640, downloadedFileVersion: 0x0103_0000, imageUpgradeStatus: 1), now: Self.now)
        #expect(Self.value(ZCLClusterID.otaUpgrade, OTAAttribute.upgradeServerID, context) == .ieeeAddress(Self.hub))
        #expect(Self.value(ZCLClusterID.otaUpgrade, OTAAttribute.fileOffset, context) == .uint32(640))
        #expect(Self.value(ZCLClusterID.otaUpgrade, OTAAttribute.currentFileVersion, context) == .uint32(0x0102_0300))
        #expect(Self.value(ZCLClusterID.otaUpgrade, OTAAttribute.downloadedFileVersion, context) == .uint32(0x0103_0000))
        #expect(Self.value(ZCLClusterID.otaUpgrade, OTAAttribute.imageUpgradeStatus, context) == .enum8(1))
        #expect(Self.value(ZCLClusterID.otaUpgrade, OTAAttribute.manufacturerID, context) == .uint16(0x1234))
        #expect(Self.value(ZCLClusterID.otaUpgrade, OTAAttribute.imageTypeID, context) == .uint16(0x0001))
        #expect(Self.value(ZCLClusterID.otaUpgrade, 0x0099, context) == nil)
        device.hub = nil
        let alone = DeviceAttributes.Context(device: device, model: nil, now: Self.now)
        #expect(Self.value(ZCLClusterID.otaUpgrade, OTAAttribute.upgradeServerID, alone) == .ieeeAddress(EUI64(UInt64.max)))
        #expect(Self.value(ZCLClusterID.otaUpgrade, OTAAttribute.downloadedFileVersion, alone) == .uint32(0xFFFF_FFFF))
        #expect(Self.value(ZCLClusterID.otaUpgrade, OTAAttribute.manufacturerID, alone) == .uint16(0))
    }

    @Test("Metering: the load profile of the meter served (a GPF its GSME's), units by fuel, nothing before the Change of Tenancy")
    func metering() {
        let esme = Self.device(.esme, id: 0x00DB_1234_5678_0002)
        let context = DeviceAttributes.Context(device: esme, model: nil, now: Self.now)
        let expected = LoadProfile.cumulative(device: esme.id, type: .esme, at: Self.now)
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.currentSummationDelivered, context) == .uint48(UInt64(expected)))
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.unitOfMeasure, context) == .enum8(0))
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.meteringDeviceType, context) == .bitmap8(0))
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.multiplier, context) == .uint24(1))
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.divisor, context) == .uint24(1000))
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.status, context) == .bitmap8(0))
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.meterSerialNumber, context) == .octetString(Array("00DB123456780002".utf8)))
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.instantaneousDemand, context)
            == .int24(Int32(clamping: LoadProfile.instantaneousDemand(device: esme.id, type: .esme, at: Self.now))))
        let yesterday = LoadProfile.dailyTotal(device: esme.id, type: .esme, day: Self.now.dayNumber - 1)
        #expect(Self.value(ZCLClusterID.metering, DeviceAttributes.previousDayConsumptionDelivered, context) == .uint24(UInt32(clamping: yesterday)))
        let today = expected - LoadProfile.cumulative(device: esme.id, type: .esme, at: .startOfDay(Self.now.dayNumber))
        #expect(Self.value(ZCLClusterID.metering, DeviceAttributes.currentDayConsumptionDelivered, context) == .uint24(UInt32(clamping: today)))
        #expect(Self.value(ZCLClusterID.metering, 0x0999, context) == nil)

        // After a Change of Tenancy an hour ago: yesterday is not served, today counts from the change.
        let change = Timestamp(unixMillis: Self.now.unixMillis - 3_600_000)
        let moved = DeviceAttributes.Context(device: esme, model: nil, now: Self.now, tenancyStart: change)
        #expect(Self.value(ZCLClusterID.metering, DeviceAttributes.previousDayConsumptionDelivered, moved) == .uint24(0))
        let sinceChange = expected - LoadProfile.cumulative(device: esme.id, type: .esme, at: max(change, .startOfDay(Self.now.dayNumber)))
        #expect(Self.value(ZCLClusterID.metering, DeviceAttributes.currentDayConsumptionDelivered, moved) == .uint24(UInt32(clamping: sinceChange)))

        let gsme = EUI64(0x00DB_1234_5678_0003)
        let gpf = DeviceAttributes.Context(device: Self.device(.gpf, id: 0x00DB_1234_5678_0004), model: nil, meter: gsme, now: Self.now)
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.unitOfMeasure, gpf) == .enum8(1))
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.currentSummationDelivered, gpf)
            == .uint48(UInt64(LoadProfile.cumulative(device: gsme, type: .gsme, at: Self.now))))
        #expect(Self.value(ZCLClusterID.metering, MeteringAttribute.meterSerialNumber, gpf) == .octetString(Array("00DB123456780003".utf8)))
    }

    @Test("records keep the order asked; what the device does not serve is UNSUPPORTED_ATTRIBUTE")
    func records() {
        let context = DeviceAttributes.Context(device: Self.device(.ppmid), model: Self.model, now: Self.now)
        #expect(DeviceAttributes.records(cluster: ZCLClusterID.basic, ids: [BasicAttribute.swBuildID, 0x7777, BasicAttribute.zclVersion], context: context) == [
            .value(BasicAttribute.swBuildID, .charString("01020300")), .status(0x7777, .unsupportedAttribute), .value(BasicAttribute.zclVersion, .uint8(8)),
        ])
        #expect(DeviceAttributes.records(cluster: ZCLClusterID.prepayment, ids: [1], context: context) == [.status(1, .unsupportedAttribute)])
    }

    static func frame<C: ZCLClusterCommand>(_ command: C) -> ZCLFrame { ZCLFrame(command, sequenceNumber: 5, disableDefaultResponse: false) }

    @Test("commands go to the behaviour of the device type that takes them; others are refused with their status")
    func routing() throws {
        let smartEnergy = ZCLProfileID.smartEnergy
        func route(_ frame: ZCLFrame, _ cluster: UInt16, _ type: DeviceType, profile: UInt16 = ZCLProfileID.smartEnergy) -> DeviceCommand {
            DeviceCommand(frame: frame, profile: profile, cluster: cluster, deviceType: type)
        }
        let read = ZCLFrame(ReadAttributes(attributeIDs: [1, 2]), direction: .clientToServer, sequenceNumber: 1)
        #expect(route(read, ZCLClusterID.basic, .ppmid) == .readAttributes(cluster: ZCLClusterID.basic, ids: [1, 2]))
        #expect(route(read, ZCLClusterID.basic, .ppmid, profile: 0x0104) == .refused(.unsupportedCluster))
        #expect(route(read, ZCLClusterID.metering, .ppmid) == .refused(.unsupportedCluster))
        #expect(route(read, 0x0006, .esme) == .refused(.unsupportedCluster))
        var odd = read
        odd.payload = [1]
        #expect(route(odd, ZCLClusterID.basic, .ihd) == .refused(.malformedCommand))
        let answer = ZCLFrame(ReadAttributesResponse(records: []), direction: .serverToClient, sequenceNumber: 1)
        #expect(route(answer, ZCLClusterID.basic, .ihd) == .consumed)
        var otherGlobal = read
        otherGlobal.header.commandID = 0x06
        #expect(route(otherGlobal, ZCLClusterID.basic, .ihd) == .refused(.unsupClusterCommand))
        // Write Attributes of a display's Basic cluster: its consumer settings, with the frame's manufacturer code.
        let write = WriteAttributes(records: [.init(attributeID: ConsumerSettings.attributeID, value: .charString("budget=300"))])
        let written = ZCLFrame(write, direction: .clientToServer, sequenceNumber: 2, manufacturerCode: 0x1234)
        #expect(route(written, ZCLClusterID.basic, .ihd) == .consumerSettings(write, manufacturerCode: 0x1234))
        #expect(route(written, ZCLClusterID.basic, .esme) == .refused(.unsupClusterCommand), "a meter keeps no consumer settings")
        var cut = written
        cut.payload.removeLast()
        #expect(route(cut, ZCLClusterID.basic, .ppmid) == .refused(.malformedCommand))

        let message = DisplayMessage(messageID: 1, messageControl: 0, startTime: 0, durationMinutes: 1, message: "m")
        #expect(route(Self.frame(message), ZCLClusterID.messaging, .ihd) == .messaging(.displayMessage(message)))
        #expect(route(Self.frame(message), ZCLClusterID.messaging, .esme) == .refused(.unsupClusterCommand))
        #expect(route(Self.frame(CancelMessage(messageID: 1)), ZCLClusterID.messaging, .ppmid) == .messaging(.cancelMessage(CancelMessage(messageID: 1))))
        #expect(route(Self.frame(CancelAllMessages()), ZCLClusterID.messaging, .ppmid) == .messaging(.cancelAllMessages(CancelAllMessages())))
        #expect(route(Self.frame(GetLastMessage()), ZCLClusterID.messaging, .esme) == .messaging(.getLastMessage))
        let confirmation = MessageConfirmation(messageID: 1, confirmationTime: 2)
        #expect(route(Self.frame(confirmation), ZCLClusterID.messaging, .gpf) == .messaging(.messageConfirmation(confirmation)))
        let topUp = ConsumerTopUp(originatingDevice: 2, topUpCode: Array("1".utf8))
        #expect(route(Self.frame(topUp), ZCLClusterID.prepayment, .esme) == .prepayment(.consumerTopUp(topUp)))
        #expect(route(Self.frame(topUp), ZCLClusterID.prepayment, .ppmid) == .refused(.unsupClusterCommand))
        let log = GetTopUpLog(latestEndTime: 0, numberOfRecords: 1)
        #expect(route(Self.frame(log), ZCLClusterID.prepayment, .gpf) == .prepayment(.getTopUpLog(log)))
        let debts = GetDebtRepaymentLog(latestEndTime: 0, numberOfDebts: 1, debtType: 0xFF)
        #expect(route(Self.frame(debts), ZCLClusterID.prepayment, .esme) == .prepayment(.getDebtRepaymentLog(debts)))
        let response = ConsumerTopUpResponse(result: 0, topUpValue: 1, sourceOfTopUp: 2, creditRemaining: 3)
        #expect(route(Self.frame(response), ZCLClusterID.prepayment, .ppmid) == .prepayment(.consumerTopUpResponse(response)))
        #expect(route(Self.frame(PublishTopUpLog(topUps: [])), ZCLClusterID.prepayment, .ppmid) == .prepayment(.publishTopUpLog(PublishTopUpLog(topUps: []))))
        #expect(route(Self.frame(PublishDebtLog(collections: [])), ZCLClusterID.prepayment, .ppmid) == .prepayment(.publishDebtLog(PublishDebtLog(collections: []))))
        let tenancy = PublishChangeOfTenancy(providerID: 1, issuerEventID: 2, tariffType: 0, implementationTime: 0, tenancyChangeControl: 3)
        #expect(route(Self.frame(tenancy), ZCLClusterID.deviceManagement, .ihd) == .changeOfTenancy(tenancy))
        let supplier = PublishChangeOfSupplier(currentProviderID: 1, issuerEventID: 2, tariffType: 0, proposedProviderID: 3, changeTime: 0,
                                               changeControl: 0, proposedProviderName: [], proposedProviderContactDetails: [])
        #expect(route(Self.frame(supplier), ZCLClusterID.deviceManagement, .ppmid) == .changeOfSupplier(supplier))
        #expect(route(Self.frame(ImageNotify(queryJitter: 1, manufacturerCode: 1, imageType: 1, newFileVersion: 1)), ZCLClusterID.otaUpgrade, .ihd) == .otaUpgrade)
        // A payload cut short is MALFORMED_COMMAND, whatever the command.
        var short = Self.frame(topUp)
        short.payload = []
        #expect(route(short, ZCLClusterID.prepayment, .esme) == .refused(.malformedCommand))
        _ = smartEnergy
    }

    @Test("replies: commands carry the request's sequence number; SUCCESS is left out when disabled; no answer to a Default Response")
    func replies() throws {
        let request = Self.frame(CancelAllMessages()).header
        let success = ZCLReply.status(.success).frames(answering: request)
        #expect(try success.first?.decodePayload(as: DefaultResponse.self) == DefaultResponse(commandID: request.commandID, statusCode: 0))
        var quiet = request
        quiet.disableDefaultResponse = true
        #expect(ZCLReply.status(.success).frames(answering: quiet).isEmpty)
        #expect(ZCLReply.status(.failure).frames(answering: quiet).count == 1)
        let defaultResponse = ZCLFrame(DefaultResponse(commandID: 0, statusCode: 0), direction: .clientToServer, sequenceNumber: 3).header
        #expect(ZCLReply.status(.failure).frames(answering: defaultResponse).isEmpty)
        let confirmation = MessageConfirmation(messageID: 1, confirmationTime: 2)
        let framed = try #require(ZCLReply.messageConfirmation(confirmation).frames(answering: request).first)
        #expect(framed.header.sequenceNumber == 5 && framed.header.disableDefaultResponse)
        #expect(try framed.decodePayload(as: MessageConfirmation.self) == confirmation)
    }

    @Test("a Read Attributes Response keeps as many records as fit in one HAN frame, in order, encoded as the ZCL says")
    func readAttributesFits() throws {
        let request = ZCLFrame(ReadAttributes(attributeIDs: []), direction: .clientToServer, sequenceNumber: 4).header
        let long = String(repeating: "x", count: 254)
        let records: [ReadAttributesResponse.Record] = (0..<20).map { .value(UInt16($0), .charString(long)) }
        let frame = ZCLReply.readAttributesResponse(to: request, records: records)
        let kept = try frame.decodePayload(as: ReadAttributesResponse.self).records
        #expect(kept.count < 20 && !kept.isEmpty)
        #expect(kept == Array(records.prefix(kept.count)))
        #expect(frame.encoded().count <= HANData.maxZCLLength)
        let small: [ReadAttributesResponse.Record] = [.value(1, .uint8(2)), .status(2, .unsupportedAttribute)]
        let smallFrame = ZCLReply.readAttributesResponse(to: request, records: small)
        #expect(smallFrame.payload == ReadAttributesResponse(records: small).encoded())
        #expect(smallFrame.header.sequenceNumber == 4 && smallFrame.header.commandID == ZCLGlobalCommandID.readAttributesResponse)
    }
}
