import SMETSCore
import SMETSWire
import Testing
@testable import SMETSDevices

/// The fixtures of the OTA tests: a PPMID-like client, its hub, and one GB image.
enum OTAFixture {
    static let hub = EUI64(0x00DB_1234_5678_0001)
    static let rig = EUI64(0x00DB_1234_5678_00F0)
    static let device = EUI64(0x00DB_1234_5678_0003)
    static let manufacturer: UInt16 = 0x1234
    static let imageType: UInt16 = 0x0001
    static let running = FirmwareVersion(0x0102_0300)
    static let newVersion: UInt32 = 0x0103_0000
    static let now = Timestamp(unixSeconds: 1_800_000_000)
    static let hash = String(repeating: "ab", count: 32)
    static let otherHash = String(repeating: "cd", count: 32)

    static let context = OTAClient.Context(manufacturerCode: manufacturer, imageType: imageType, hardwareVersion: 1, runningFirmware: running,
                                           maxImageBlockBytes: 200, maxImageBytes: 4096, upgradeServer: hub)

    static func image(version: UInt32 = newVersion, bodySize: Int = 1000, manufacturer: UInt16 = manufacturer) -> OTAImage {
        let body = (0..<bodySize).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        return .gb(header: OTAImageHeader(manufacturerCode: manufacturer, imageType: imageType, fileVersion: version), manufacturerImage: body)
    }

    static func offered(_ file: [UInt8], version: UInt32 = newVersion) -> OfferedImage {
        OfferedImage(manufacturerCode: manufacturer, imageType: imageType, fileVersion: version, imageSize: UInt32(file.count))
    }

    static func notify(version: UInt32? = newVersion, manufacturer: UInt16? = manufacturer, type: UInt16? = imageType) -> OTAClient.Input {
        .command(.imageNotify(ImageNotify(queryJitter: 100, manufacturerCode: manufacturer, imageType: type, newFileVersion: version)), from: hub)
    }

    static func queryResponse(_ offered: OfferedImage, from server: EUI64 = hub) -> OTAClient.Input {
        .command(.queryNextImageResponse(.success(manufacturerCode: offered.manufacturerCode, imageType: offered.imageType,
                                                  fileVersion: offered.fileVersion, imageSize: offered.imageSize)), from: server)
    }

    /// The Image Block Response that answers `request` from `file`.
    static func block(_ request: ImageBlockRequest, of file: [UInt8], from server: EUI64 = hub) -> OTAClient.Input {
        let start = Int(request.fileOffset)
        let data = Array(file[start..<min(file.count, start + Int(request.maximumDataSize))])
        return .command(.imageBlockResponse(.success(manufacturerCode: request.manufacturerCode, imageType: request.imageType,
                                                     fileVersion: request.fileVersion, fileOffset: request.fileOffset, data: data)), from: server)
    }

    static func endResponse(version: UInt32 = newVersion, manufacturer: UInt16 = manufacturer, type: UInt16 = imageType,
                            currentTime: UInt32 = 0, upgradeTime: UInt32 = 0) -> OTAClient.Input {
        .command(.upgradeEndResponse(UpgradeEndResponse(manufacturerCode: manufacturer, imageType: type, fileVersion: version,
                                                        currentTime: currentTime, upgradeTime: upgradeTime)), from: hub)
    }
}

extension Array where Element == OTAClient.Action {
    /// The frames sent, in order.
    var sent: [OTAClient.ClientCommand] {
        compactMap { if case let .send(command, _, _) = $0 { command } else { nil } }
    }

    var blockRequests: [ImageBlockRequest] {
        sent.compactMap { if case let .imageBlockRequest(request) = $0 { request } else { nil } }
    }

    var upgradeEnds: [UpgradeEndRequest] {
        sent.compactMap { if case let .upgradeEndRequest(request) = $0 { request } else { nil } }
    }

    var events: [OTAClient.Event] {
        compactMap { if case let .event(event) = $0 { event } else { nil } }
    }

    var changes: [OTAClient.FirmwareChange] {
        compactMap { if case let .persist(change) = $0 { change } else { nil } }
    }
}

extension OTAClient {
    /// Receives at the fixtures' time and context.
    /// Every batch is also checked against the executor's contract: an input that may not change
    /// the store returns no durable change and no activation.
    mutating func take(_ input: Input, now: Timestamp = OTAFixture.now, context: Context = OTAFixture.context) -> [Action] {
        let actions = receive(input, now: now, context: context)
        if !input.mayChangeStore {
            let durable = actions.contains { if case .persist = $0 { true } else if case .activate = $0 { true } else { false } }
            #expect(!durable, "\(input) may not change the store, yet returned \(actions)")
        }
        return actions
    }

    /// Notified and answered with `file`'s identity: the batch of the query response.
    mutating func start(_ file: [UInt8], version: UInt32 = OTAFixture.newVersion, from server: EUI64 = OTAFixture.hub) -> [Action] {
        _ = take(.command(.imageNotify(ImageNotify(queryJitter: 100)), from: server))
        return take(OTAFixture.queryResponse(OTAFixture.offered(file, version: version), from: server))
    }

    /// Answers every block request from `file` until the machine stops asking; returns the last batch.
    mutating func serve(_ file: [UInt8], from batch: [Action], blocks limit: Int = .max, server: EUI64 = OTAFixture.hub) -> [Action] {
        var batch = batch
        var served = 0
        while served < limit, let request = batch.blockRequests.last {
            batch = take(OTAFixture.block(request, of: file, from: server))
            served += 1
        }
        return batch
    }

    /// A client holding `image` (verified and committed), status download complete.
    static func holding(_ image: OTAImage, hash: String = OTAFixture.hash) -> OTAClient {
        var client = OTAClient()
        let file = image.encoded()
        _ = client.serve(file, from: client.start(file))
        _ = client.take(.verdict(.accepted(image, hash: hash)))
        return client
    }
}
