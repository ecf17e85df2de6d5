import Foundation
import Logging
import SMETSConfig
import SMETSCore
@testable import SMETSDaemon
import SMETSDUIS
import SMETSStore
import Testing

/// The work the DCC holds (DSP-future-dated requests, CV 4 pre-commands) is kept in the store before
/// it is acknowledged: when the store fails the request gets 503 and nothing is held, in memory or
/// on disk; a cancellation the store cannot record cancels nothing. Also what else of the DCC's
/// DUIS work meets the store: devices' alert counters, and an 11.4 whose image cannot be kept.
@Suite("DUIS held work, alert counters and firmware distribution against the store")
struct DUISHeldStoreFailureTests {
    static let esme = "00-DB-12-34-56-78-00-02", ppmid = "00-DB-12-34-56-78-00-05", supplier = "90-B3-D5-1F-30-01-00-00"

    static func document(target: String, counter: Int, cv: Int, reference: String, variant: String, body: String) -> [UInt8] {
        Array("""
            <?xml version="1.0" encoding="UTF-8"?><sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">\
            <sr:Header><sr:RequestID>\(supplier):\(target):\(counter)</sr:RequestID><sr:CommandVariant>\(cv)</sr:CommandVariant>\
            <sr:ServiceReference>\(reference)</sr:ServiceReference><sr:ServiceReferenceVariant>\(variant)</sr:ServiceReferenceVariant></sr:Header>\
            <sr:Body>\(body)</sr:Body></sr:Request>
            """.utf8)
    }

    static func read(_ counter: Int, at time: String) -> [UInt8] {
        document(target: ppmid, counter: counter, cv: 1, reference: "11.2", variant: "11.2",
                 body: "<sr:ReadFirmwareVersion><sr:ExecutionDateTime>\(time)</sr:ExecutionDateTime></sr:ReadFirmwareVersion>")
    }

    static func held(_ engine: Engine) throws -> [DUISHeldRow] { try engine.store.read { try $0.allDUISHeld() } }

    @Test("a future-dated request and its cancellation: 503 and nothing held when the store fails, held once it is back")
    func futureDated() throws {
        let (engine, gate, _) = try HANStoreFailureTests.fixture()
        let logger = Logger(label: "test")
        let service = DUISService(engine: engine, settings: DUISSettings(), outbox: DUISOutbox(settings: DUISSettings(), events: engine.events, logger: logger),
                                  logger: logger)
        gate.set(.fail)
        #expect(service.handle(path: .sendCommand, body: Self.read(1, at: "2030-01-01T00:00:00Z")).status == 503)
        #expect(service.pendingCount == 0)
        gate.set(.pass)
        #expect(try Self.held(engine).isEmpty)
        let accepted = service.handle(path: .sendCommand, body: Self.read(2, at: "2030-01-01T00:00:00Z"))
        #expect(accepted.status == 200 && accepted.body.contains("<sr:ResponseCode>I99</sr:ResponseCode>"))
        #expect(service.pendingCount == 1)
        let rows = try Self.held(engine)
        #expect(rows.map(\.kind) == [.request] && rows.first?.requestID == "\(Self.supplier):\(Self.ppmid):2")
        #expect(rows.first?.due == Timestamp(rfc3339: "2030-01-01T00:00:00Z"))

        gate.set(.fail)
        #expect(service.handle(path: .sendCommand, body: Self.read(3, at: "3000-12-31T00:00:00Z")).status == 503)
        #expect(service.pendingCount == 1)
        gate.set(.pass)
        #expect(try Self.held(engine).count == 1)
        #expect(service.handle(path: .sendCommand, body: Self.read(4, at: "3000-12-31T00:00:00Z")).status == 200)
        #expect(service.pendingCount == 0)
        #expect(try Self.held(engine).isEmpty)
    }

    @Test("a CV 4 pre-command: 503 and nothing kept when the store fails; kept with its bytes once it is back")
    func preCommand() throws {
        let (engine, gate, _) = try HANStoreFailureTests.fixture()
        let logger = Logger(label: "test")
        let service = DUISService(engine: engine, settings: DUISSettings(), outbox: DUISOutbox(settings: DUISSettings(), events: engine.events, logger: logger),
                                  logger: logger)
        let join = Self.document(target: Self.esme, counter: 10, cv: 4, reference: "8.7", variant: "8.7.1",
                                 body: "<sr:JoinServiceCritical><sr:OtherDeviceID>00-DB-12-34-56-78-00-07</sr:OtherDeviceID></sr:JoinServiceCritical>")
        gate.set(.fail)
        #expect(service.handle(path: .transform, body: join).status == 503)
        gate.set(.pass)
        #expect(try Self.held(engine).isEmpty)
        let reply = service.handle(path: .transform, body: join)
        #expect(reply.status == 200 && reply.body.contains("<sr:PreCommand>"))
        let rows = try Self.held(engine)
        #expect(rows.map(\.kind) == [.preCommand] && rows.first?.payload?.first == 0xDF && rows.first?.document == join)
    }

    @Test("a device's alert counter: max(last + 1, Unix ms), per device, kept across a new service on the same store")
    func alertCounters() throws {
        let (engine, gate, _) = try HANStoreFailureTests.fixture()
        let logger = Logger(label: "test")
        func service() -> DUISService {
            DUISService(engine: engine, settings: DUISSettings(), outbox: DUISOutbox(settings: DUISSettings(), events: engine.events, logger: logger), logger: logger)
        }
        let hub = EUI64("00-DB-12-34-56-78-00-01")!, ppmid = EUI64(Self.ppmid)!
        let first = service()
        let seed = UInt64(HANStoreFailureTests.start.unixMillis)
        #expect(first.alertCounter(hub) == seed)
        #expect(first.alertCounter(hub) == seed + 1)
        #expect(first.alertCounter(ppmid) == seed, "one counter per device")
        // What a restart keeps: the engine's clock has not moved, the counter still increases.
        let restarted = service()
        #expect(restarted.alertCounter(hub) == seed + 2)
        gate.set(.fail)
        _ = restarted.alertCounter(hub)  // sent with an in-memory counter, nothing kept
        gate.set(.pass)
        #expect(restarted.alertCounter(hub) == seed + 3)
        #expect(try engine.store.read { try $0.meta("duis.alertCounter.\(hub)") } == String(seed + 3))
    }

    @Test("11.4 when the image cannot be kept: the hub distributes nothing and the user gets FirmwareDistributionFailure naming the device")
    func firmwareDistributionFailure() throws {
        let (engine, gate, _) = try OTAExecutorTests.fixture()
        let logger = Logger(label: "test")
        let outbox = DUISOutbox(settings: DUISSettings(), events: engine.events, logger: logger)
        let service = DUISService(engine: engine, settings: DUISSettings(), outbox: outbox, logger: logger)
        func update(_ counter: Int) -> DUISService.Reply {
            service.handle(path: .nonDevice, body: Self.document(target: "90-B3-D5-1F-30-00-00-02", counter: counter, cv: 8, reference: "11.4", variant: "11.4", body: """
                <sr:UpdatePPMIDFirmware><sr:FirmwareImage>\(Data(OTAExecutorTests.file).base64EncodedString())</sr:FirmwareImage>\
                <sr:FirmwareVersion>01030000</sr:FirmwareVersion><sr:DeviceIDList>\(Self.ppmid)</sr:DeviceIDList></sr:UpdatePPMIDFirmware>
                """))
        }
        let refused = update(1)
        #expect(refused.body.contains("<sr:ResponseCode>I99</sr:ResponseCode>"))
        gate.set(.fail)
        refused.then?()
        gate.set(.pass)
        let failure = try #require(outbox.list(after: 0, limit: 10).map(\.xml).only)
        #expect(failure.contains("<sr:DCCAlertMessage><sr:DCCAlertCode>N12</sr:DCCAlertCode><sr:DCCAlert><sr:FirmwareDistributionFailure>"))
        #expect(failure.contains("<sr:UpdateFirmwareRequestID>\(Self.supplier):90-B3-D5-1F-30-00-00-02:1</sr:UpdateFirmwareRequestID><sr:MeterIDs>\(Self.ppmid)</sr:MeterIDs>"))
        #expect(engine.device(EUI64(Self.ppmid)!)?.firmwareVersion.hex == "01020300")

        // With the store back the image reaches the PPMID: the CHF's 8F8A, then the DCC's PPMIDAlert.
        let taken = update(2)
        taken.then?()
        let after = outbox.list(after: 1, limit: 10).map(\.xml)
        #expect(after.count == 2)
        #expect(after.first?.contains("<sr:DeviceAlertMessage><sr:AlertCode>8F8A</sr:AlertCode>") == true)
        #expect(after.last?.contains("<sr:ActivateImageResultCode>ActivationSuccess</sr:ActivateImageResultCode>") == true)
        #expect(engine.device(EUI64(Self.ppmid)!)?.firmwareVersion.hex == "01030000")
    }
}

extension Array {
    /// The one element, when there is exactly one.
    fileprivate var only: Element? { count == 1 ? first : nil }
}
