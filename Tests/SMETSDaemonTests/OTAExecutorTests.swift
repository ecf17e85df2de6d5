import Foundation
import Logging
import SMETSCore
import SMETSRPC
@testable import SMETSDaemon
import SMETSStore
import SMETSWire
import Synchronization
import Testing

/// Keeps every log record, to check that a failure was logged.
final class LogCapture: Sendable {
    struct Record: Sendable { var level: Logger.Level; var message: String; var metadata: Logger.Metadata }
    let records = Mutex<[Record]>([])

    var handler: Handler { Handler(capture: self) }

    func events(at level: Logger.Level) -> [String] {
        records.withLock { $0.filter { $0.level == level }.compactMap { $0.metadata["event"]?.description } }
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.records.withLock { $0.append(Record(level: event.level, message: event.message.description, metadata: merged)) }
        }
    }
}

/// The engine carrying out the OTA client's actions against a rig: what the device sends when the
/// store cannot keep what the client decided, and a model without the OTA cluster.
@Suite("Engine as OTA executor")
struct OTAExecutorTests {
    static let ppmid = EUI64("00-DB-12-34-56-78-00-05")!
    static let ihd = EUI64("00-DB-12-34-56-78-00-06")!
    static let rig = EUI64("00-DB-00-00-00-00-00-F0")!
    static let start = Timestamp(unixMillis: 1_800_000_000_000)
    static let version: UInt32 = 0x0103_0000

    /// An engine on a copy of the shipped lab whose PPMID model names no signing key, so that an
    /// unsigned image built here passes every rule.
    static func fixture() throws -> (Engine, StoreGate, LogCapture) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("smetsd-ota-\(UUID().uuidString)")
        let lab = base.appendingPathComponent("devices")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: DaemonUnitTests.root + "/devices", toPath: lab.path)
        let modelFile = lab.appendingPathComponent("models/acme-ppmid-dm.json")
        let model = try String(contentsOf: modelFile, encoding: .utf8)
        let keyless = model.replacingOccurrences(of: "\"signingKey\": \"keys/acme-meters-TEST-public.pem\",", with: "")
        #expect(keyless != model, "the fixture must drop the model's signing key")
        try keyless.write(to: modelFile, atomically: true, encoding: .utf8)
        let state = base.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let capture = LogCapture()
        let logger = Logger(label: "test") { _ in capture.handler }
        let gate = StoreGate()
        let engine = try Engine(store: try StateStore(directory: state, hooks: gate.hooks), lab: try LabLoader.load(directory: lab.path),
                                events: EventHub(logger: logger), logger: logger, realNow: { Self.start })
        return (engine, gate, capture)
    }

    static let file: [UInt8] = OTAImage.gb(header: OTAImageHeader(manufacturerCode: 0x1234, imageType: 0x0001, fileVersion: version),
                                           manufacturerImage: (0..<700).map { UInt8(truncatingIfNeeded: $0 &* 13) }).encoded()

    /// Sends `command` from the rig to `device`; returns the frames the device answers with.
    static func send<C: ZCLClusterCommand>(_ engine: Engine, _ command: C, to device: EUI64 = ppmid, sequence: UInt8 = 9) -> [ZCLFrame] {
        let zcl = ZCLFrame(command, sequenceNumber: sequence, disableDefaultResponse: false).encoded()
        let handling = engine.handleZCL(deviceID: device, source: rig, profile: ZCLProfileID.smartEnergy, cluster: ZCLClusterID.otaUpgrade, zcl: zcl)
        let outgoing: [OutgoingZCL] = switch handling {
        case .now(let frames): frames
        case .blocking(let work): work()
        }
        return outgoing.map(\.frame)
    }

    /// Notifies the device and serves `file` until it sends Upgrade End Request, which it returns;
    /// `beforeLast` runs before the last block is sent.
    static func download(_ engine: Engine, beforeLast: () -> Void = {}) throws -> UpgradeEndRequest {
        let notify = ImageNotify(queryJitter: 100, manufacturerCode: 0x1234, imageType: 0x0001, newFileVersion: version)
        let query = try #require(send(engine, notify).first).decodePayload(as: QueryNextImageRequest.self)
        #expect(query.currentFileVersion == 0x0102_0300, "the firmware the device runs")
        var frames = send(engine, QueryNextImageResponse.success(manufacturerCode: 0x1234, imageType: 0x0001, fileVersion: version,
                                                                 imageSize: UInt32(file.count)))
        for _ in 0..<100 {
            let frame = try #require(frames.first)
            if frame.header.commandID == OTACommandID.upgradeEndRequest { return try frame.decodePayload(as: UpgradeEndRequest.self) }
            let request = try frame.decodePayload(as: ImageBlockRequest.self)
            let end = min(file.count, Int(request.fileOffset) + Int(request.maximumDataSize))
            if end == file.count { beforeLast() }
            frames = send(engine, ImageBlockResponse.success(manufacturerCode: 0x1234, imageType: 0x0001, fileVersion: version,
                                                             fileOffset: request.fileOffset, data: Array(file[Int(request.fileOffset)..<end])))
        }
        throw CancellationError()
    }

    static func status(_ engine: Engine) throws -> JSONValue { ControlRouter.firmwareStatusJSON(try engine.firmwareStatus(ppmid)) }

    static func defaultResponseStatus(_ frames: [ZCLFrame]) throws -> UInt8? {
        guard let frame = frames.first, frame.header.commandID == ZCLGlobalCommandID.defaultResponse, frame.header.frameType == .global else { return nil }
        return try frame.decodePayload(as: DefaultResponse.self).statusCode
    }

    @Test("an image the store cannot keep is not held: the device sends Upgrade End Request ABORT and the error is logged")
    func heldImageNotStored() throws {
        let (engine, gate, capture) = try Self.fixture()
        let end = try Self.download(engine) { gate.set(.fail) }
        #expect(end.status == .abort)
        #expect(end.fileVersion == Self.version)
        let status = try Self.status(engine)
        #expect(status["held"] == .null)
        #expect(status["imageUpgradeStatus"] == .int(0))
        #expect(capture.events(at: .error).contains("firmware.storeFailed"))

        // Once the store works again, the next offer is downloaded and held.
        gate.set(.pass)
        #expect(try Self.download(engine).status == .success)
        #expect(try Self.status(engine)["held"]?["fileVersion"] == .string("01030000"))
        #expect(try Self.status(engine)["imageUpgradeStatus"] == .int(2))
    }

    @Test("a schedule the store cannot keep is answered FAILURE and nothing is scheduled")
    func scheduleNotStored() throws {
        let (engine, gate, capture) = try Self.fixture()
        #expect(try Self.download(engine).status == .success)
        gate.set(.fail)
        let due = Self.start.adding(seconds: 3600)
        let frames = Self.send(engine, UpgradeEndResponse(manufacturerCode: 0x1234, imageType: 0x0001, fileVersion: Self.version,
                                                          currentTime: 0, upgradeTime: due.zigbeeUTC))
        #expect(try Self.defaultResponseStatus(frames) == ZCLStatus.failure.rawValue)
        let held = try #require(Self.status(engine)["held"])
        #expect(held["status"] == .string("downloadComplete"))
        #expect(held["activateAt"] == .null)
        #expect(capture.events(at: .error).contains("firmware.storeFailed"))

        // Sent again with the store back, the schedule is kept and answered SUCCESS (the rig asked for a default response).
        gate.set(.pass)
        let again = Self.send(engine, UpgradeEndResponse(manufacturerCode: 0x1234, imageType: 0x0001, fileVersion: Self.version,
                                                         currentTime: 0, upgradeTime: due.zigbeeUTC))
        #expect(try Self.defaultResponseStatus(again) == ZCLStatus.success.rawValue)
        #expect(try Self.status(engine)["held"]?["activateAt"] == .string(due.rfc3339))
    }

    @Test("an activation the store cannot keep is answered FAILURE; the device runs its old firmware and still holds the image")
    func activationNotStored() throws {
        let (engine, gate, capture) = try Self.fixture()
        #expect(try Self.download(engine).status == .success)
        gate.set(.fail)
        let frames = Self.send(engine, UpgradeEndResponse(manufacturerCode: 0x1234, imageType: 0x0001, fileVersion: Self.version, currentTime: 0, upgradeTime: 0))
        #expect(try Self.defaultResponseStatus(frames) == ZCLStatus.failure.rawValue)
        #expect(engine.device(Self.ppmid)?.firmwareVersion == FirmwareVersion(0x0102_0300))
        #expect(try Self.status(engine)["held"]?["fileVersion"] == .string("01030000"))
        #expect(capture.events(at: .error).contains("firmware.storeFailed"))

        gate.set(.pass)
        _ = Self.send(engine, UpgradeEndResponse(manufacturerCode: 0x1234, imageType: 0x0001, fileVersion: Self.version, currentTime: 0, upgradeTime: 0))
        #expect(engine.device(Self.ppmid)?.firmwareVersion == FirmwareVersion(Self.version))
        #expect(try Self.status(engine)["held"] == .null)
    }

    /// Found by scripts/crash-campaign: a scheduled activation of an image the device held fell due
    /// while the hub was serving it a newer one; the device restarted on the held image and dropped
    /// the download, and firmware.update answered "activated" for the newer image.
    @Test("firmware.update does not report the activation of another image as its own")
    func activationOfAnotherImageIsNotTheUpdates() {
        let device = Self.ppmid
        var result = FirmwareUpdateResult(device: device, outcome: "failed", reason: "", checks: [], activateAt: nil, firmwareVersion: nil)
        result.describe(.activated(FirmwareVersion(0x0104_1900)), offered: FirmwareVersion(0x0104_1C00), endStatus: nil)
        #expect(result.outcome == "aborted")
        #expect(result.reason.contains("01041900") && result.reason.contains("01041C00"), "\(result.reason)")
        result.describe(.activated(FirmwareVersion(0x0104_1C00)), offered: FirmwareVersion(0x0104_1C00), endStatus: nil)
        #expect(result.outcome == "activated" && result.reason == "running 01041C00")
    }

    @Test("Activate Firmware through the API throws when the store cannot keep it, and changes nothing")
    func apiActivationNotStored() throws {
        let (engine, gate, _) = try Self.fixture()
        #expect(try Self.download(engine).status == .success)
        gate.set(.fail)
        #expect(throws: (any Error).self) { try engine.activateFirmware(Self.ppmid, hash: nil, at: nil) }
        #expect(throws: (any Error).self) { try engine.activateFirmware(Self.ppmid, hash: nil, at: Self.start.adding(seconds: 60)) }
        #expect(try Self.status(engine)["held"]?["status"] == .string("downloadComplete"))
        gate.set(.pass)
        let report = try engine.activateFirmware(Self.ppmid, hash: nil, at: nil)
        #expect(report.outcome == .success)
        #expect(try engine.activateFirmware(Self.ppmid, hash: nil, at: nil).outcome == .noImageHeld)
    }

    @Test("a model without the OTA cluster answers OTA commands UNSUPPORTED_CLUSTER, and the hub does not push to it")
    func modelWithoutOTA() throws {
        let (engine, _, _) = try Self.fixture()
        let frames = Self.send(engine, ImageNotify(queryJitter: 100), to: Self.ihd)
        #expect(try Self.defaultResponseStatus(frames) == ZCLStatus.unsupportedCluster.rawValue)
        let (_, results) = try engine.updateFirmware(file: Self.file, targets: [Self.ihd], activation: .now)
        #expect(results.first?.outcome == "refused")
        #expect(results.first?.reason.contains("no OTA Upgrade cluster") == true)
    }
}
