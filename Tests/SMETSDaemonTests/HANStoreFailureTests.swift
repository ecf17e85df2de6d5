import Foundation
import Logging
import SMETSCore
@testable import SMETSDaemon
import SMETSStore
import SMETSWire
import Testing

/// Every HAN path that changes the store, carried out against a store that fails on demand: the
/// device answers what it would (FAILURE, or the command's own error result), a line is logged,
/// nothing is kept and nothing published; and with the store back, the same path keeps its change.
@Suite("HAN commands when the store fails")
struct HANStoreFailureTests {
    static let esme = EUI64("00-DB-12-34-56-78-00-02")!
    static let ppmid = EUI64("00-DB-12-34-56-78-00-05")!
    static let ihd = EUI64("00-DB-12-34-56-78-00-06")!
    static let rig = EUI64("00-DB-00-00-00-00-00-F0")!
    static let start = Timestamp(unixMillis: 1_800_000_000_000)

    static func fixture() throws -> (Engine, StoreGate, LogCapture) {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("smetsd-hanfail-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let capture = LogCapture()
        let logger = Logger(label: "test") { _ in capture.handler }
        let gate = StoreGate()
        let engine = try Engine(store: try StateStore(directory: state, hooks: gate.hooks), lab: try LabLoader.load(directory: DaemonUnitTests.root + "/devices"),
                                events: EventHub(logger: logger), logger: logger, realNow: { Self.start })
        return (engine, gate, capture)
    }

    /// Sends `command` from `source` to `device`; returns the frames the device answers with.
    static func send<C: ZCLClusterCommand>(_ engine: Engine, _ command: C, to device: EUI64, from source: EUI64 = rig) -> [ZCLFrame] {
        let zcl = ZCLFrame(command, sequenceNumber: 21, disableDefaultResponse: false).encoded()
        let outgoing: [OutgoingZCL] = switch engine.handleZCL(deviceID: device, source: source, profile: ZCLProfileID.smartEnergy,
                                                              cluster: C.clusterID, zcl: zcl) {
        case .now(let frames): frames
        case .blocking(let work): work()
        }
        return outgoing.map(\.frame)
    }

    static func status(_ frames: [ZCLFrame]) throws -> ZCLStatus? {
        guard frames.count == 1, let frame = frames.first, frame.header.frameType == .global,
              frame.header.commandID == ZCLGlobalCommandID.defaultResponse else { return nil }
        #expect(frame.header.sequenceNumber == 21)
        return ZCLStatus(rawValue: try frame.decodePayload(as: DefaultResponse.self).statusCode)
    }

    static func messages(_ engine: Engine, _ device: EUI64) throws -> [StoredMessage] { try engine.store.read { try $0.messages(device: device) } }

    static func failures(_ capture: LogCapture) -> Int { capture.events(at: .error).filter { $0 == "han.storeFailed" }.count }

    static let message = DisplayMessage(messageID: 42, messageControl: 0, startTime: 0, durationMinutes: 30, message: "Your bill is ready")

    @Test("DisplayMessage: FAILURE, nothing kept, not published; kept once the store is back")
    func displayMessage() throws {
        let (engine, gate, capture) = try Self.fixture()
        gate.set(.fail)
        #expect(try Self.status(Self.send(engine, Self.message, to: Self.ihd)) == .failure)
        // A message that asks for confirmation is not confirmed either.
        var confirm = Self.message
        confirm.messageControl = 0x80
        #expect(try Self.status(Self.send(engine, confirm, to: Self.ihd)) == .failure)
        #expect(try Self.messages(engine, Self.ihd).isEmpty)
        #expect(Self.failures(capture) == 2)
        #expect(!capture.events(at: .info).contains("message.displayed"))

        gate.set(.pass)
        #expect(try Self.status(Self.send(engine, Self.message, to: Self.ihd)) == .success)
        let answer = try #require(Self.send(engine, confirm, to: Self.ihd).first)
        #expect(try answer.decodePayload(as: MessageConfirmation.self).messageID == 42)
        let kept = try Self.messages(engine, Self.ihd)
        #expect(kept.map(\.messageID) == [42])
        #expect(kept.first?.confirmedAt == Self.start, "the message and its confirmation are kept together")
        #expect(capture.events(at: .info).filter { $0 == "message.displayed" }.count == 2)
    }

    @Test("CancelMessage and CancelAllMessages: FAILURE and every message still held")
    func cancelling() throws {
        let (engine, gate, capture) = try Self.fixture()
        for id in [1, 2] as [UInt32] {
            var message = Self.message
            message.messageID = id
            _ = Self.send(engine, message, to: Self.ihd)
        }
        gate.set(.fail)
        #expect(try Self.status(Self.send(engine, CancelMessage(messageID: 1), to: Self.ihd)) == .failure)
        #expect(try Self.status(Self.send(engine, CancelAllMessages(), to: Self.ihd)) == .failure)
        #expect(try Self.messages(engine, Self.ihd).map(\.messageID) == [1, 2])
        #expect(Self.failures(capture) == 2)

        gate.set(.pass)
        #expect(try Self.status(Self.send(engine, CancelMessage(messageID: 1), to: Self.ihd)) == .success)
        #expect(try Self.status(Self.send(engine, CancelMessage(messageID: 1), to: Self.ihd)) == .notFound)
        #expect(try Self.status(Self.send(engine, CancelAllMessages(), to: Self.ihd)) == .success)
        #expect(try Self.messages(engine, Self.ihd).isEmpty)
    }

    @Test("a meter's sent message: not sent when it cannot be kept, the caller told; MessageConfirmation answers FAILURE")
    func meterMessages() throws {
        let (engine, gate, capture) = try Self.fixture()
        let outgoing = OutgoingZCL(from: Self.esme, to: Self.rig, cluster: ZCLClusterID.messaging,
                                   frame: ZCLFrame(Self.message, sequenceNumber: 3, disableDefaultResponse: true))
        gate.set(.fail)
        #expect(engine.emit([outgoing]).count == 1)
        #expect(engine.traces.frames(Self.esme).isEmpty, "a message the meter cannot keep is not sent")
        #expect(try Self.status(Self.send(engine, MessageConfirmation(messageID: 42, confirmationTime: 0), to: Self.esme, from: Self.ihd)) == .failure)
        #expect(try Self.messages(engine, Self.esme).isEmpty)
        #expect(Self.failures(capture) == 2)
        // GetLastMessage only reads: NOT_FOUND, as there is nothing.
        #expect(try Self.status(Self.send(engine, GetLastMessage(), to: Self.esme)) == .notFound)

        gate.set(.pass)
        #expect(engine.emit([outgoing]).isEmpty)
        #expect(engine.traces.frames(Self.esme).map(\.direction) == [.outgoing])
        #expect(try Self.status(Self.send(engine, MessageConfirmation(messageID: 42, confirmationTime: 0), to: Self.esme, from: Self.ihd)) == .success)
        #expect(try Self.messages(engine, Self.esme).first?.confirmedAt == Self.start)
        let last = try #require(Self.send(engine, GetLastMessage(), to: Self.esme).first)
        #expect(try last.decodePayload(as: DisplayMessage.self) == Self.message)
    }

    @Test("ConsumerTopUp: rejected with the error result, the credit as it was, no log entry at the meter or the PPMID")
    func topUp() throws {
        let (engine, gate, capture) = try Self.fixture()
        let code = Array("12345678901234500150".utf8)
        gate.set(.fail)
        let refused = try #require(Self.send(engine, ConsumerTopUp(originatingDevice: 2, topUpCode: code), to: Self.esme, from: Self.ppmid).first)
            .decodePayload(as: ConsumerTopUpResponse.self)
        #expect(refused == ConsumerTopUpResponse(result: 0x03, topUpValue: 0, sourceOfTopUp: 2, creditRemaining: 1000))
        // The control API's path (han.topUp) goes the same way.
        #expect(try engine.topUp(from: Self.ppmid, code: "12345678901234500150", gas: false).result == 0x03)
        #expect(Self.failures(capture) == 2)
        #expect(try engine.store.read { try $0.prepayment(device: Self.esme) }?.credit == 1000)
        #expect(try engine.store.read { try $0.topUps(device: Self.esme) }.isEmpty)
        #expect(try engine.store.read { try $0.topUps(device: Self.ppmid) }.isEmpty)
        #expect(!capture.events(at: .info).contains("prepayment.toppedUp"))

        gate.set(.pass)
        let accepted = try engine.topUp(from: Self.ppmid, code: "12345678901234500150", gas: false)
        #expect(accepted.result == 0 && accepted.topUpValue == 150 && accepted.creditRemaining == 1150)
        #expect(try engine.topUp(from: Self.ppmid, code: "12345678901234500150", gas: false).result == 0x02)
        #expect(try engine.store.read { try $0.topUps(device: Self.ppmid) }.count == 1)
        let read = ZCLFrame(ReadAttributes(attributeIDs: [PrepaymentAttribute.creditRemaining]), direction: .clientToServer, sequenceNumber: 4).encoded()
        guard case .blocking(let work) = engine.handleZCL(deviceID: Self.esme, source: Self.rig, profile: ZCLProfileID.smartEnergy,
                                                          cluster: ZCLClusterID.prepayment, zcl: read) else {
            Issue.record("a meter's balances are read from the store, on the blocking pool")
            return
        }
        let credit = try #require(work().first).frame.decodePayload(as: ReadAttributesResponse.self)
        #expect(credit[PrepaymentAttribute.creditRemaining]?.value == .int32(1150))
        let log = try #require(Self.send(engine, GetTopUpLog(latestEndTime: 0xFFFF_FFFF, numberOfRecords: 5), to: Self.esme).first)
            .decodePayload(as: PublishTopUpLog.self)
        #expect(log.topUps.map(\.topUpAmount) == [150])
    }

    @Test("DUIS 2.2's top-up: rejected-error, nothing kept or published when the store fails; applied once when it is back")
    func wanTopUp() throws {
        let (engine, gate, capture) = try Self.fixture()
        let dcc = EUI64("90-B3-D5-1F-30-00-00-02")!, code = "73951443011611684638"
        gate.set(.fail)
        let refused = engine.topUpOverWAN(meter: Self.esme, code: code, value: 500, source: 0, from: dcc)
        #expect(refused == Engine.WANTopUpOutcome(result: .rejectedError, value: 0, creditRemaining: 1000, stored: false))
        #expect(Self.failures(capture) == 1)
        #expect(!capture.events(at: .info).contains("prepayment.toppedUp"))
        gate.set(.pass)
        #expect(try engine.store.read { try $0.prepayment(device: Self.esme) }?.credit == 1000)
        #expect(try engine.store.read { try $0.topUps(device: Self.esme) }.isEmpty)
        let accepted = engine.topUpOverWAN(meter: Self.esme, code: code, value: 500, source: 0, from: dcc)
        #expect(accepted == Engine.WANTopUpOutcome(result: .accepted, value: 500, creditRemaining: 1500, stored: true))
        #expect(engine.topUpOverWAN(meter: Self.esme, code: code, value: 500, source: 0, from: dcc).result == .rejectedDuplicate)
        #expect(engine.topUpOverWAN(meter: Self.esme, code: "73951443011611684637", value: nil, source: 0, from: dcc).result == .rejectedInvalid)
        #expect(try engine.store.read { try $0.topUps(device: Self.esme) }.map(\.amount) == [500])
    }

    @Test("DUIS 8.11 and 3.4: nothing changes in memory or the store when the store fails")
    func whitelistAndSupplierName() throws {
        let (engine, gate, _) = try Self.fixture()
        let hub = EUI64("00-DB-12-34-56-78-00-01")!, spare = EUI64("00-DB-12-34-56-78-00-07")!
        gate.set(.fail)
        #expect(throws: (any Error).self) { try engine.updateHANDeviceLog(hub: hub, device: spare, add: false) }
        #expect(throws: (any Error).self) { try engine.changeSupplier(premises: "P0001", provider: 0, name: "Lab Energy Ltd", telephone: "0800 555 0199") }
        gate.set(.pass)
        #expect(engine.device(spare)?.status == .whitelisted)
        #expect(try engine.supplierContact(premises: "P0001").name == nil)
        let (_, after) = try engine.updateHANDeviceLog(hub: hub, device: spare, add: false)
        #expect(after.status == .pending && engine.device(spare)?.status == .pending)
        #expect(try engine.store.read { try $0.device(spare) }?.status == .pending)
        _ = try engine.changeSupplier(premises: "P0001", provider: 0, name: "Lab Energy Ltd", telephone: "0800 555 0199")
        #expect(try engine.supplierContact(premises: "P0001").name == "Lab Energy Ltd")
        #expect(try engine.supplierContact(premises: "P0001").telephone == "0800 555 0199")
    }

    @Test("PublishDebtLog at a PPMID and Change of Supplier at a display: FAILURE, nothing kept")
    func ppmidAndSupplier() throws {
        let (engine, gate, capture) = try Self.fixture()
        let log = PublishDebtLog(collections: [.init(collectionTime: Self.start.zigbeeUTC, amountCollected: 50, debtType: 1, outstandingDebt: 450)])
        let supplier = PublishChangeOfSupplier(currentProviderID: 1, issuerEventID: 2, tariffType: 0, proposedProviderID: 0xABCD, changeTime: 0,
                                               changeControl: 0, proposedProviderName: Array("New".utf8), proposedProviderContactDetails: [])
        gate.set(.fail)
        #expect(try Self.status(Self.send(engine, log, to: Self.ppmid, from: Self.esme)) == .failure)
        #expect(try Self.status(Self.send(engine, supplier, to: Self.ihd, from: Self.esme)) == .failure)
        #expect(try engine.store.read { try $0.debtRecords(device: Self.ppmid) }.isEmpty)
        #expect(Self.failures(capture) == 2)

        gate.set(.pass)
        #expect(try Self.status(Self.send(engine, log, to: Self.ppmid, from: Self.esme)) == .success)
        #expect(try engine.store.read { try $0.debtRecords(device: Self.ppmid) }.map(\.amount) == [50])
        #expect(try Self.status(Self.send(engine, log, to: Self.ppmid, from: Self.esme)) == .success)
        #expect(try engine.store.read { try $0.debtRecords(device: Self.ppmid) }.count == 1, "a log sent again adds nothing")
    }

    @Test("PublishTopUpLog at a PPMID: FAILURE, nothing kept; kept once the store is back")
    func ppmidTopUpLog() throws {
        let (engine, gate, capture) = try Self.fixture()
        let log = PublishTopUpLog(topUps: [.init(topUpCode: Array("12345678901234500150".utf8), topUpAmount: 150, topUpTime: Self.start.zigbeeUTC)])
        gate.set(.fail)
        #expect(try Self.status(Self.send(engine, log, to: Self.ppmid, from: Self.esme)) == .failure)
        #expect(try engine.store.read { try $0.topUps(device: Self.ppmid) }.isEmpty)
        #expect(Self.failures(capture) == 1)
        gate.set(.pass)
        #expect(try Self.status(Self.send(engine, log, to: Self.ppmid, from: Self.esme)) == .success)
        #expect(try engine.store.read { try $0.topUps(device: Self.ppmid) }.map(\.amount) == [150])
    }

    @Test("Write Attributes of consumer settings: FAILURE for every record, nothing kept; kept once the store is back")
    func consumerSettings() throws {
        let (engine, gate, capture) = try Self.fixture()
        let write = WriteAttributes(records: [.init(attributeID: 0xFF00, value: .charString("budget=300")), .init(attributeID: 0xFF00, value: .charString("alert=on"))])
        // brightview-ihd's manufacturer code.
        let zcl = ZCLFrame(write, direction: .clientToServer, sequenceNumber: 21, manufacturerCode: 0x5678).encoded()
        func send() throws -> WriteAttributesResponse {
            let outgoing: [OutgoingZCL] = switch engine.handleZCL(deviceID: Self.ihd, source: Self.rig, profile: ZCLProfileID.smartEnergy,
                                                                  cluster: ZCLClusterID.basic, zcl: zcl) {
            case .now(let frames): frames
            case .blocking(let work): work()
            }
            let frame = try #require(outgoing.first?.frame)
            #expect(frame.header.commandID == ZCLGlobalCommandID.writeAttributesResponse && frame.header.manufacturerCode == 0x5678)
            return try frame.decodePayload(as: WriteAttributesResponse.self)
        }
        gate.set(.fail)
        #expect(try send().failures.map(\.status) == [.failure, .failure])
        #expect(try engine.store.read { try $0.consumerSettings(device: Self.ihd) }.isEmpty)
        #expect(Self.failures(capture) == 1)
        gate.set(.pass)
        #expect(try send().failures.isEmpty)
        #expect(try engine.store.read { try $0.consumerSettings(device: Self.ihd) } == ["budget": "300", "alert": "on"])
    }
}
