import SMETSCore
import SMETSWire
import Testing
@testable import SMETSDevices

private typealias F = OTAFixture

extension OTAServer {
    static func offering(_ image: OTAImage, to client: EUI64 = OTAFixture.device, activation: ActivationTime = .now) -> OTAServer {
        var server = OTAServer()
        _ = server.receive(.offer(Offer(file: image.encoded(), header: image.header, hash: OTAFixture.hash, activation: activation), to: client), now: OTAFixture.now)
        return server
    }

    mutating func answer(_ command: ClientCommand, from client: EUI64 = OTAFixture.device) -> [Action] {
        receive(.command(command, from: client), now: OTAFixture.now)
    }
}

@Suite("OTAServer")
struct OTAServerTests {
    static let query = QueryNextImageRequest(manufacturerCode: F.manufacturer, imageType: F.imageType, currentFileVersion: 0x0102_0300)

    static func blockRequest(offset: UInt32, size: UInt8, version: UInt32 = F.newVersion, manufacturer: UInt16 = F.manufacturer,
                             type: UInt16 = F.imageType) -> OTAServer.ClientCommand {
        .imageBlockRequest(ImageBlockRequest(manufacturerCode: manufacturer, imageType: type, fileVersion: version, fileOffset: offset, maximumDataSize: size))
    }

    @Test("an offer is announced with an Image Notify naming the image, each a new transaction")
    func offerNotifies() {
        let image = F.image()
        var server = OTAServer(sequence: 41)
        let offer = OTAServer.Offer(file: image.encoded(), header: image.header, hash: F.hash, activation: .later)
        let actions = server.receive(.offer(offer, to: F.device), now: F.now)
        #expect(actions == [.notify(ImageNotify(queryJitter: 100, manufacturerCode: F.manufacturer, imageType: F.imageType, newFileVersion: F.newVersion),
                                    to: F.device, sequence: 42)])
        #expect(server.offers[F.device] == offer)
        let newer = F.image(version: 0x0104_0000)
        let second = server.receive(.offer(OTAServer.Offer(file: newer.encoded(), header: newer.header, hash: F.otherHash, activation: .now), to: F.device), now: F.now)
        #expect(second.count == 1 && server.sequence == 43)
        #expect(server.offers[F.device]?.hash == F.otherHash, "a new offer replaces the earlier one")
    }

    @Test("Query Next Image: the offer when manufacturer and image type match")
    func queryMatches() {
        let image = F.image()
        var server = OTAServer.offering(image)
        #expect(server.answer(.queryNextImageRequest(Self.query)) == [.respond(.queryNextImageResponse(
            .success(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion, imageSize: UInt32(image.encoded().count))))])
    }

    @Test("Query Next Image: NO_IMAGE_AVAILABLE with no offer, to another client, or for another manufacturer or type",
          arguments: [(UInt16(0x1234), UInt16(0x0001), true), (UInt16(0x9999), UInt16(0x0001), false), (UInt16(0x1234), UInt16(0x0002), false)])
    func queryRefused(manufacturer: UInt16, type: UInt16, fromOtherClient: Bool) {
        var server = OTAServer.offering(F.image())
        let request = QueryNextImageRequest(manufacturerCode: manufacturer, imageType: type, currentFileVersion: 1)
        let client = fromOtherClient ? F.rig : F.device
        #expect(server.answer(.queryNextImageRequest(request), from: client) == [.respond(.queryNextImageResponse(.failure(.noImageAvailable)))])
        var empty = OTAServer()
        #expect(empty.answer(.queryNextImageRequest(Self.query)) == [.respond(.queryNextImageResponse(.failure(.noImageAvailable)))])
    }

    @Test("Query Next Image: a wildcard-manufacturer image is offered to any manufacturer, still of its type only")
    func wildcardManufacturer() {
        var server = OTAServer.offering(F.image(manufacturer: 0xFFFF))
        let other = QueryNextImageRequest(manufacturerCode: 0x4321, imageType: F.imageType, currentFileVersion: 1)
        guard case .respond(.queryNextImageResponse(.success(let code, _, _, _)))? = server.answer(.queryNextImageRequest(other)).first else {
            Issue.record("not offered")
            return
        }
        #expect(code == 0xFFFF)
        let otherType = QueryNextImageRequest(manufacturerCode: 0x4321, imageType: 0x0002, currentFileVersion: 1)
        #expect(server.answer(.queryNextImageRequest(otherType)) == [.respond(.queryNextImageResponse(.failure(.noImageAvailable)))])
    }

    @Test("Image Block: the data from the offset asked, at most the size asked, less at the end")
    func blocks() {
        let file = F.image().encoded()
        var server = OTAServer.offering(F.image())
        #expect(server.answer(Self.blockRequest(offset: 100, size: 50)) == [.respond(.imageBlockResponse(
            .success(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion, fileOffset: 100, data: Array(file[100..<150]))))])
        let last = UInt32(file.count - 10)
        #expect(server.answer(Self.blockRequest(offset: last, size: 200)) == [.respond(.imageBlockResponse(
            .success(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion, fileOffset: last, data: Array(file.suffix(10)))))])
    }

    @Test("Image Block: ABORT for another image, an offset past the file, or a zero size",
          arguments: [
              blockRequest(offset: 0, size: 10, manufacturer: 0x9999), blockRequest(offset: 0, size: 10, type: 0x0002),
              blockRequest(offset: 0, size: 10, version: 0x0104_0000), blockRequest(offset: UInt32(F.image().encoded().count), size: 10),
              blockRequest(offset: 0xFFFF_FFFF, size: 10), blockRequest(offset: 0, size: 0),
          ])
    func blockRefused(request: OTAServer.ClientCommand) {
        var server = OTAServer.offering(F.image())
        #expect(server.answer(request) == [.respond(.imageBlockResponse(.failure(.abort)))])
    }

    @Test("Image Block: NO_IMAGE_AVAILABLE with nothing offered to the client")
    func blockWithoutOffer() {
        var server = OTAServer.offering(F.image())
        #expect(server.answer(Self.blockRequest(offset: 0, size: 10), from: F.rig) == [.respond(.imageBlockResponse(.failure(.noImageAvailable)))])
    }

    @Test("Upgrade End SUCCESS is answered with the activation time: 0, a time, or 0xFFFFFFFF, and the hub's time",
          arguments: [(OTAServer.ActivationTime.now, UInt32(0)), (.at(F.now.adding(seconds: 3600)), F.now.adding(seconds: 3600).zigbeeUTC),
                      (.later, UInt32(0xFFFF_FFFF))])
    func upgradeEndSuccess(activation: OTAServer.ActivationTime, upgradeTime: UInt32) {
        var server = OTAServer.offering(F.image(), activation: activation)
        let request = UpgradeEndRequest(status: .success, manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion)
        let actions = server.answer(.upgradeEndRequest(request))
        #expect(actions == [
            .event(.upgradeEnd(client: F.device, status: 0x00, fileVersion: F.newVersion)),
            .respond(.upgradeEndResponse(UpgradeEndResponse(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion,
                                                            currentTime: F.now.zigbeeUTC, upgradeTime: upgradeTime))),
        ])
        #expect(server.offers[F.device]?.endStatus == 0x00)
    }

    @Test("Upgrade End with a failure status is recorded and acknowledged")
    func upgradeEndFailure() {
        var server = OTAServer.offering(F.image())
        let request = UpgradeEndRequest(status: .invalidImage, manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion)
        #expect(server.answer(.upgradeEndRequest(request)) == [
            .event(.upgradeEnd(client: F.device, status: 0x96, fileVersion: F.newVersion)), .respond(.status(.success)),
        ])
        let withdrawn = server.withdraw(F.device)
        #expect(withdrawn?.endStatus == 0x96)
        #expect(server.offers.isEmpty)
        #expect(server.withdraw(F.device) == nil)
    }

    @Test("Upgrade End from a client offered nothing is told and acknowledged, with no response")
    func upgradeEndWithoutOffer() {
        var server = OTAServer()
        let request = UpgradeEndRequest(status: .success, manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion)
        #expect(server.answer(.upgradeEndRequest(request)) == [
            .event(.upgradeEnd(client: F.device, status: 0x00, fileVersion: F.newVersion)), .respond(.status(.success)),
        ])
        #expect(server.offers.isEmpty)
    }
}

@Suite("OTA client and server together")
struct OTAHandshakeTests {
    /// Carries frames between the two machines, as the daemon's exchange does, with `verdict` as
    /// the executor's check. Returns the client's last actions that need the executor.
    static func run(_ client: inout OTAClient, _ server: inout OTAServer, verdict: (([UInt8]) -> OTAClient.Verdict)) -> [OTAClient.Action] {
        var toClient: [OTAClient.Input] = []
        var executorActions: [OTAClient.Action] = []
        for action in server.receive(.offer(server.offers[F.device]!, to: F.device), now: F.now) {
            if case let .notify(notify, _, _) = action { toClient.append(.command(.imageNotify(notify), from: F.hub)) }
        }
        var steps = 0
        while let input = toClient.first, steps < 10_000 {
            toClient.removeFirst()
            steps += 1
            for action in client.receive(input, now: F.now, context: F.context) {
                switch action {
                case let .send(command, _, _):
                    let forServer: OTAServer.ClientCommand = switch command {
                    case .queryNextImageRequest(let request): .queryNextImageRequest(request)
                    case .imageBlockRequest(let request): .imageBlockRequest(request)
                    case .upgradeEndRequest(let request): .upgradeEndRequest(request)
                    }
                    for reply in server.receive(.command(forServer, from: F.device), now: F.now) {
                        switch reply {
                        case .respond(.queryNextImageResponse(let response)): toClient.append(.command(.queryNextImageResponse(response), from: F.hub))
                        case .respond(.imageBlockResponse(let response)): toClient.append(.command(.imageBlockResponse(response), from: F.hub))
                        case .respond(.upgradeEndResponse(let response)): toClient.append(.command(.upgradeEndResponse(response), from: F.hub))
                        case .respond(.status), .notify, .event: break
                        }
                    }
                case let .verify(file, _, _):
                    toClient.append(.verdict(verdict(file)))
                case .persist, .activate:
                    executorActions.append(action)
                case .respond, .event:
                    break
                }
            }
        }
        return executorActions
    }

    @Test("a hub push runs the whole handshake: query, every block, the verdict, the end, activation now")
    func pushToActivation() throws {
        let image = F.image()
        var server = OTAServer.offering(image, activation: .now)
        var client = OTAClient()
        var checked: [UInt8] = []
        let actions = Self.run(&client, &server) { file in
            checked = file
            return .accepted(try! OTAImage(parsing: file), hash: F.hash)
        }
        #expect(checked == image.encoded(), "the client checks exactly the file served")
        #expect(actions.first == .persist(.hold(HeldFirmware(hash: F.hash, fileVersion: FirmwareVersion(F.newVersion), manufacturerCode: F.manufacturer,
                                                             imageType: F.imageType, status: .downloadComplete, server: F.hub), image: image)))
        #expect(actions.last == .activate(hash: F.hash))
        #expect(server.offers[F.device]?.endStatus == 0x00)
    }

    @Test("a push with activation later leaves the image waiting; a rejected image ends INVALID_IMAGE at the hub")
    func pushLaterAndRejected() {
        var server = OTAServer.offering(F.image(), activation: .later)
        var client = OTAClient()
        _ = Self.run(&client, &server) { .accepted(try! OTAImage(parsing: $0), hash: F.hash) }
        #expect(client.imageUpgradeStatus == .waitingToUpgrade)
        #expect(client.lastStep == .waiting)

        var refusing = OTAServer.offering(F.image())
        var other = OTAClient()
        let verdict = FirmwareVerdict(checks: [FirmwareCheck("downgrade", .fail, "older")])
        let actions = Self.run(&other, &refusing) { _ in .rejected(verdict) }
        #expect(actions.isEmpty)
        #expect(refusing.offers[F.device]?.endStatus == ZCLStatus.invalidImage.rawValue)
        #expect(other.lastStep == .rejected(verdict))
    }
}
