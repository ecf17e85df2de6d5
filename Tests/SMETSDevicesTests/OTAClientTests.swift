import Foundation
import SMETSCore
import SMETSWire
import Testing
@testable import SMETSDevices

private typealias F = OTAFixture

@Suite("OTAClient: Image Notify and Query Next Image")
struct OTAClientQueryTests {
    @Test("an Image Notify for the device's image is answered with a query of the firmware it runs")
    func notifyIsAnsweredWithAQuery() {
        var client = OTAClient()
        let actions = client.take(F.notify())
        let query = QueryNextImageRequest(manufacturerCode: F.manufacturer, imageType: F.imageType, currentFileVersion: F.running.rawValue, hardwareVersion: 1)
        #expect(actions == [
            .event(.notified(server: F.hub, fileVersion: F.newVersion, accepted: true)),
            .send(.queryNextImageRequest(query), to: F.hub, sequence: 1),
        ])
        #expect(client.phase == .idle)
    }

    @Test("CurrentFileVersion is the firmware the device runs, in the query and the attribute")
    func currentFileVersionIsTheRunningFirmware() {
        var context = F.context
        context.runningFirmware = FirmwareVersion(0x0F02_0300)
        var client = OTAClient()
        let actions = client.take(F.notify(), context: context)
        guard case let .queryNextImageRequest(query)? = actions.sent.first else {
            Issue.record("no query in \(actions)")
            return
        }
        #expect(query.currentFileVersion == 0x0F02_0300)
        #expect(client.attribute(OTAAttribute.currentFileVersion, context: context) == .uint32(0x0F02_0300))
    }

    @Test("the query is sent to the notifier, with no hardware version when the model has none")
    func queryGoesToTheNotifier() {
        var context = F.context
        context.hardwareVersion = nil
        var client = OTAClient()
        let actions = client.receive(.command(.imageNotify(ImageNotify(queryJitter: 1)), from: F.rig), now: F.now, context: context)
        guard case let .send(.queryNextImageRequest(query), to, _)? = actions.last else {
            Issue.record("no query in \(actions)")
            return
        }
        #expect(to == F.rig)
        #expect(query.hardwareVersion == nil)
    }

    @Test("an Image Notify naming another manufacturer or image type is noted and not answered",
          arguments: [(UInt16(0x9999), UInt16(0x0001)), (UInt16(0x1234), UInt16(0x0002)), (UInt16(0x9999), UInt16(0x0002))])
    func notifyForAnotherImageIsIgnored(manufacturer: UInt16, type: UInt16) {
        var client = OTAClient()
        let actions = client.take(F.notify(manufacturer: manufacturer, type: type))
        #expect(actions == [.event(.notified(server: F.hub, fileVersion: F.newVersion, accepted: false))])
        #expect(client.sequence == 0)
    }

    @Test("wildcard manufacturer and image type, and a notice that names neither, are answered",
          arguments: [(UInt16?(0xFFFF), UInt16?(0xFFFF)), (UInt16?(0x1234), UInt16?(0xFFFF)), (UInt16?(0xFFFF), UInt16?(0x0001)), (nil, nil)])
    func wildcardNotifyIsAnswered(manufacturer: UInt16?, type: UInt16?) {
        var client = OTAClient()
        let actions = client.take(F.notify(version: nil, manufacturer: manufacturer, type: type))
        #expect(actions.first == .event(.notified(server: F.hub, fileVersion: nil, accepted: true)))
        #expect(actions.sent.count == 1)
    }

    @Test("a query answered with a failure status is noted as no image, and nothing is downloaded")
    func noImageAvailable() {
        var client = OTAClient()
        _ = client.take(F.notify())
        let actions = client.take(.command(.queryNextImageResponse(.failure(.noImageAvailable)), from: F.hub))
        #expect(actions == [.event(.noImage(server: F.hub, status: 0x98))])
        #expect(client.lastStep == .noImage(0x98))
        #expect(client.phase == .idle)
        #expect(client.imageUpgradeStatus == .normal)
    }

    @Test("an offered image starts a download from offset 0 with the model's largest block")
    func startsADownload() {
        let file = F.image().encoded()
        var client = OTAClient()
        let actions = client.start(file)
        let offered = F.offered(file)
        let request = ImageBlockRequest(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion, fileOffset: 0, maximumDataSize: 200)
        #expect(actions == [
            .event(.downloadStarted(server: F.hub, image: offered, resumedFrom: 0)),
            .send(.imageBlockRequest(request), to: F.hub, sequence: 2),
        ])
        #expect(client.imageUpgradeStatus == .downloading)
        #expect(client.lastStep == .downloading)
        #expect(client.download?.server == F.hub)
        #expect(client.fileOffset == 0)
    }

    @Test("a block size over 255 asks for 255, the most a response carries")
    func blockSizeIsClamped() {
        var context = F.context
        context.maxImageBlockBytes = 1000
        let file = F.image().encoded()
        var client = OTAClient()
        _ = client.take(F.notify(), context: context)
        let actions = client.take(F.queryResponse(F.offered(file)), context: context)
        #expect(actions.blockRequests.first?.maximumDataSize == 255)
    }

    @Test("an image over the size limit is refused with INVALID_IMAGE before any block")
    func imageOverTheLimitIsRefused() {
        var client = OTAClient()
        let offered = OfferedImage(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion, imageSize: 4097)
        _ = client.take(F.notify())
        let actions = client.take(F.queryResponse(offered))
        let reason = "the offered image is 4097 bytes; the limit is 4096 (maxImageBytes)"
        #expect(actions == [
            .event(.refused(server: F.hub, image: offered, reason: reason)),
            .send(.upgradeEndRequest(UpgradeEndRequest(status: .invalidImage, manufacturerCode: F.manufacturer, imageType: F.imageType,
                                                       fileVersion: F.newVersion)), to: F.hub, sequence: 0),
        ])
        #expect(client.lastStep == .aborted(reason))
        #expect(client.phase == .idle)
    }

    @Test("an image of exactly the limit is downloaded; an empty one is refused")
    func limitIsInclusiveAndEmptyIsRefused() {
        var client = OTAClient()
        let atLimit = OfferedImage(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion, imageSize: 4096)
        #expect(client.take(F.queryResponse(atLimit)).blockRequests.count == 1)
        var empty = OTAClient()
        let none = OfferedImage(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion, imageSize: 0)
        let actions = empty.take(F.queryResponse(none))
        #expect(actions.events == [.refused(server: F.hub, image: none, reason: "the offered image is empty")])
        #expect(actions.upgradeEnds.map(\.status) == [.invalidImage])
    }

    @Test("a refused offer leaves a download in progress where it was")
    func refusedOfferKeepsTheDownload() {
        let file = F.image().encoded()
        var client = OTAClient()
        _ = client.serve(file, from: client.start(file), blocks: 2)
        _ = client.take(F.queryResponse(OfferedImage(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: 9, imageSize: 99_999)))
        #expect(client.fileOffset == 400)
        #expect(client.imageUpgradeStatus == .downloading)
    }
}

@Suite("OTAClient: blocks")
struct OTAClientBlockTests {
    @Test("blocks are asked for in order until the file is complete, then the file is handed over for checking")
    func downloadsTheWholeFile() {
        let file = F.image().encoded()
        var client = OTAClient()
        var batch = client.start(file)
        var offsets: [UInt32] = []
        var sizes: [UInt8] = []
        while let request = batch.blockRequests.last {
            offsets.append(request.fileOffset)
            sizes.append(request.maximumDataSize)
            batch = client.take(F.block(request, of: file))
        }
        #expect(offsets == stride(from: 0, to: file.count, by: 200).map { UInt32($0) })
        #expect(sizes.last == UInt8(file.count % 200), "the last block asks for what is left")
        #expect(batch.last == .verify(file: file, server: F.hub, image: F.offered(file)))
        #expect(batch.sent.isEmpty, "nothing goes to the server before the verdict")
        guard case .verifying = client.phase else {
            Issue.record("expected verifying, got \(client.phase)")
            return
        }
        #expect(client.fileOffset == UInt32(file.count))
        #expect(client.imageUpgradeStatus == .downloading)
    }

    @Test("progress is reported once per whole percent, and at the end")
    func progressOncePerPercent() {
        var context = F.context
        context.maxImageBlockBytes = 1
        let file = F.image(bodySize: 200 - 56).encoded()  // 200 bytes: one percent every two blocks
        #expect(file.count == 200)
        var client = OTAClient()
        _ = client.take(F.notify(), context: context)
        var batch = client.take(F.queryResponse(F.offered(file)), context: context)
        var percents: [UInt32] = []
        while let request = batch.blockRequests.last {
            batch = client.take(F.block(request, of: file), context: context)
            for case let .progress(_, offset, size) in batch.events { percents.append(offset * 100 / size) }
        }
        #expect(percents == Array(0...100).map { UInt32($0) })
    }

    @Test("a block at another offset or of another image is dropped and the right one asked for again")
    func strayBlocksAreAskedAgain() {
        let file = F.image().encoded()
        var client = OTAClient()
        let first = client.start(file)
        let request = try! #require(first.blockRequests.first)
        var wrongOffset = request
        wrongOffset.fileOffset = 400
        let again = client.take(F.block(wrongOffset, of: file))
        #expect(again.blockRequests == [request])
        #expect(again.sent.count == 1)
        var otherImage = request
        otherImage.fileVersion = 0x0999_0000
        let still = client.take(F.block(otherImage, of: file))
        #expect(still.blockRequests == [request])
        #expect(client.sequence == 4, "each request is a new transaction")
        #expect(client.fileOffset == 0)
    }

    @Test("a block from another server, or with no download, is ignored")
    func blocksOutOfSequenceAreIgnored() {
        let file = F.image().encoded()
        var idle = OTAClient()
        let request = ImageBlockRequest(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion, fileOffset: 0, maximumDataSize: 200)
        #expect(idle.take(F.block(request, of: file)) == [])
        #expect(idle == OTAClient())
        var client = OTAClient()
        _ = client.start(file)
        let before = client
        #expect(client.take(F.block(request, of: file, from: F.rig)) == [])
        #expect(client == before)
    }

    @Test("an empty block aborts the download with INVALID_IMAGE")
    func emptyBlockAborts() {
        let file = F.image().encoded()
        var client = OTAClient()
        _ = client.serve(file, from: client.start(file), blocks: 1)
        let actions = client.take(.command(.imageBlockResponse(.success(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion,
                                                                        fileOffset: 200, data: [])), from: F.hub))
        let reason = "an empty block at offset 200 cannot advance the download"
        #expect(actions == [
            .event(.aborted(server: F.hub, reason: reason)),
            .send(.upgradeEndRequest(UpgradeEndRequest(status: .invalidImage, manufacturerCode: F.manufacturer, imageType: F.imageType,
                                                       fileVersion: F.newVersion)), to: F.hub, sequence: 0),
        ])
        #expect(client.phase == .idle)
        #expect(client.fileOffset == 0)
        #expect(client.imageUpgradeStatus == .normal)
        #expect(client.lastStep == .aborted(reason))
    }

    @Test("a block running past the image size aborts the download")
    func oversizedBlockAborts() {
        let file = F.image(bodySize: 100).encoded()
        var client = OTAClient()
        _ = client.start(file)
        let actions = client.take(.command(.imageBlockResponse(.success(manufacturerCode: F.manufacturer, imageType: F.imageType, fileVersion: F.newVersion,
                                                                        fileOffset: 0, data: file + [0])), from: F.hub))
        #expect(actions.upgradeEnds.map(\.status) == [.invalidImage])
        #expect(client.phase == .idle)
    }

    @Test("WAIT_FOR_DATA with no delay asks again at once for the same offset")
    func waitForDataWithoutDelay() {
        let file = F.image().encoded()
        var client = OTAClient()
        let last = client.serve(file, from: client.start(file), blocks: 2)
        let asked = try! #require(last.blockRequests.first)
        let actions = client.take(.command(.imageBlockResponse(.waitForData(currentTime: 500, requestTime: 500, minimumBlockPeriod: 0)), from: F.hub))
        #expect(actions.events == [.waitForData(server: F.hub, currentTime: 500, requestTime: 500)])
        #expect(actions.blockRequests == [asked])
    }

    @Test("WAIT_FOR_DATA with a delay keeps the download at its offset until the next notice")
    func waitForDataWithDelay() {
        let file = F.image().encoded()
        var client = OTAClient()
        _ = client.serve(file, from: client.start(file), blocks: 2)
        let actions = client.take(.command(.imageBlockResponse(.waitForData(currentTime: 500, requestTime: 560, minimumBlockPeriod: 0)), from: F.hub))
        #expect(actions == [.event(.waitForData(server: F.hub, currentTime: 500, requestTime: 560))])
        #expect(client.fileOffset == 400)
        #expect(client.imageUpgradeStatus == .downloading)
        // The next notice resumes it.
        let resumed = client.start(file)
        #expect(resumed.blockRequests.first?.fileOffset == 400)
    }

    @Test("WAIT_FOR_DATA with no download, or from another server, asks for nothing")
    func waitForDataWithoutDownload() {
        var client = OTAClient()
        let actions = client.take(.command(.imageBlockResponse(.waitForData(currentTime: 5, requestTime: 5, minimumBlockPeriod: 0)), from: F.hub))
        #expect(actions.sent.isEmpty)
        let file = F.image().encoded()
        _ = client.start(file)
        let fromRig = client.take(.command(.imageBlockResponse(.waitForData(currentTime: 5, requestTime: 5, minimumBlockPeriod: 0)), from: F.rig))
        #expect(fromRig.sent.isEmpty)
    }

    @Test("a failure status from the server drops the download, with no frame")
    func serverFailureAborts() {
        let file = F.image().encoded()
        var client = OTAClient()
        _ = client.serve(file, from: client.start(file), blocks: 3)
        let actions = client.take(.command(.imageBlockResponse(.failure(.abort)), from: F.hub))
        let reason = "the server answered Image Block Request with ABORT"
        #expect(actions == [.event(.aborted(server: F.hub, reason: reason))])
        #expect(client.phase == .idle)
        #expect(client.fileOffset == 0)
        #expect(client.lastStep == .aborted(reason))
        // And a notice afterwards starts over.
        #expect(client.start(file).blockRequests.first?.fileOffset == 0)
    }

    @Test("a failure status from another server, or with no download, changes nothing")
    func strayFailureIsIgnored() {
        let file = F.image().encoded()
        var client = OTAClient()
        #expect(client.take(.command(.imageBlockResponse(.failure(.abort)), from: F.hub)) == [])
        _ = client.serve(file, from: client.start(file), blocks: 1)
        let before = client
        #expect(client.take(.command(.imageBlockResponse(.failure(.abort)), from: F.rig)) == [])
        #expect(client == before)
    }
}

@Suite("OTAClient: resuming a broken transfer")
struct OTAClientResumeTests {
    @Test("the same server offering the same image again resumes at FileOffset")
    func resumesAtFileOffset() {
        let file = F.image().encoded()
        var client = OTAClient()
        _ = client.serve(file, from: client.start(file), blocks: 3)
        #expect(client.fileOffset == 600)
        let actions = client.start(file)
        #expect(actions.events == [.downloadStarted(server: F.hub, image: F.offered(file), resumedFrom: 600)])
        #expect(actions.blockRequests.first?.fileOffset == 600)
        let last = client.serve(file, from: actions)
        #expect(last.last == .verify(file: file, server: F.hub, image: F.offered(file)), "the resumed file is the whole file")
    }

    @Test("another server, or another image, starts over from 0")
    func startsOver() {
        let file = F.image().encoded()
        var client = OTAClient()
        _ = client.serve(file, from: client.start(file), blocks: 3)
        #expect(client.start(file, from: F.rig).blockRequests.first?.fileOffset == 0)
        _ = client.serve(file, from: client.start(file), blocks: 3)
        let other = F.image(version: 0x0104_0000).encoded()
        #expect(client.start(other, version: 0x0104_0000).blockRequests.first?.fileOffset == 0)
    }

    @Test("progress is reported again after a resume")
    func progressAgainAfterResume() {
        let file = F.image().encoded()
        var client = OTAClient()
        _ = client.serve(file, from: client.start(file), blocks: 3)
        let resumed = client.start(file)
        let next = client.take(F.block(try! #require(resumed.blockRequests.first), of: file))
        #expect(next.events.contains { if case .progress(_, 800, _) = $0 { true } else { false } })
    }

    @Test("a new offer while the verdict is awaited starts over, and the late verdict is ignored")
    func newOfferWhileVerifying() {
        let image = F.image()
        let file = image.encoded()
        var client = OTAClient()
        _ = client.serve(file, from: client.start(file))
        #expect(client.start(file).blockRequests.first?.fileOffset == 0)
        #expect(client.take(.verdict(.accepted(image, hash: F.hash))) == [])
        #expect(client.held == nil)
    }
}

@Suite("OTAClient: the verdict and the held image")
struct OTAClientVerdictTests {
    @Test("an accepted image is persisted, then the server is told SUCCESS")
    func acceptedImageIsHeld() {
        let image = F.image()
        let file = image.encoded()
        var client = OTAClient()
        _ = client.serve(file, from: client.start(file))
        let actions = client.take(.verdict(.accepted(image, hash: F.hash)))
        let held = HeldFirmware(hash: F.hash, fileVersion: FirmwareVersion(F.newVersion), manufacturerCode: F.manufacturer, imageType: F.imageType,
                                status: .downloadComplete, server: F.hub)
        #expect(actions == [
            .persist(.hold(held, image: image)),
            .event(.downloaded(server: F.hub, held: held, imageSize: UInt32(file.count))),
            .send(.upgradeEndRequest(UpgradeEndRequest(status: .success, manufacturerCode: F.manufacturer, imageType: F.imageType,
                                                       fileVersion: F.newVersion)), to: F.hub, sequence: 0),
        ])
        #expect(client.held == held)
        #expect(client.phase == .idle)
        #expect(client.imageUpgradeStatus == .downloadComplete)
        #expect(client.downloadedFileVersion == F.newVersion)
        #expect(client.fileOffset == UInt32(file.count))
        #expect(client.lastStep == .downloaded(hash: F.hash))
    }

    @Test("a rejected image is dropped and the server told INVALID_IMAGE")
    func rejectedImage() {
        let file = F.image().encoded()
        var client = OTAClient()
        _ = client.serve(file, from: client.start(file))
        let verdict = FirmwareVerdict(checks: [FirmwareCheck("signature", .fail, "does not verify")])
        let actions = client.take(.verdict(.rejected(verdict)))
        #expect(actions == [
            .event(.rejected(server: F.hub, fileVersion: F.newVersion, verdict: verdict)),
            .send(.upgradeEndRequest(UpgradeEndRequest(status: .invalidImage, manufacturerCode: F.manufacturer, imageType: F.imageType,
                                                       fileVersion: F.newVersion)), to: F.hub, sequence: 0),
        ])
        #expect(client.phase == .idle)
        #expect(client.fileOffset == 0)
        #expect(client.imageUpgradeStatus == .normal)
        #expect(client.held == nil)
        #expect(client.lastStep == .rejected(verdict))
    }

    @Test("a rejected image leaves an image held before as it was")
    func rejectedKeepsTheEarlierImage() {
        var client = OTAClient.holding(F.image())
        let before = client.held
        let newer = F.image(version: 0x0104_0000).encoded()
        _ = client.serve(newer, from: client.start(newer, version: 0x0104_0000))
        #expect(client.imageUpgradeStatus == .downloading)
        _ = client.take(.verdict(.rejected(FirmwareVerdict(checks: [FirmwareCheck("cpl", .fail, "not listed")]))))
        #expect(client.held == before)
        #expect(client.imageUpgradeStatus == .downloadComplete)
        #expect(client.downloadedFileVersion == F.newVersion)
    }

    @Test("a verdict with no download awaiting one is ignored")
    func strayVerdict() {
        var client = OTAClient()
        #expect(client.take(.verdict(.accepted(F.image(), hash: F.hash))) == [])
        let file = F.image().encoded()
        _ = client.serve(file, from: client.start(file), blocks: 2)
        let before = client
        #expect(client.take(.verdict(.rejected(FirmwareVerdict(checks: [])))) == [])
        #expect(client == before)
    }

    @Test("a held image that could not be stored is not held: the server is told ABORT")
    func persistFailedAborts() {
        let image = F.image()
        var client = OTAClient.holding(image)
        let actions = client.take(.persistFailed(reason: "disk I/O error"))
        let reason = "the image could not be stored: disk I/O error"
        #expect(actions == [
            .event(.storeFailed(reason: "disk I/O error")),
            .event(.aborted(server: F.hub, reason: reason)),
            .send(.upgradeEndRequest(UpgradeEndRequest(status: .abort, manufacturerCode: F.manufacturer, imageType: F.imageType,
                                                       fileVersion: F.newVersion)), to: F.hub, sequence: 0),
        ])
        #expect(client.held == nil)
        #expect(client.imageUpgradeStatus == .normal)
        #expect(client.downloadedFileVersion == nil)
        #expect(client.fileOffset == 0)
        #expect(client.lastStep == .aborted(reason))
    }

    @Test("a failed store of a new image leaves the image held before, and its schedule")
    func persistFailedRestoresTheEarlierImage() {
        var client = OTAClient.holding(F.image())
        let due = F.now.adding(seconds: 3600)
        _ = client.take(.activationRequested(hash: nil, at: due))
        let before = client.held
        let newer = F.image(version: 0x0104_0000)
        _ = client.serve(newer.encoded(), from: client.start(newer.encoded(), version: 0x0104_0000))
        let batch = client.take(.verdict(.accepted(newer, hash: F.otherHash)))
        #expect(batch.changes.first == .cancelActivation, "the earlier image's activation must not switch to the new one")
        _ = client.take(.persistFailed(reason: "full"))
        #expect(client.held == before)
        #expect(client.held?.activateAt == due)
        #expect(client.imageUpgradeStatus == .waitingToUpgrade)
        #expect(client.downloadedFileVersion == F.newVersion)
    }

    @Test("a failed commit is undone only right after the batch that asked for it")
    func persistFailedOnlyRightAfter() {
        var fresh = OTAClient()
        #expect(fresh.take(.persistFailed(reason: "x")) == [])
        var client = OTAClient.holding(F.image())
        _ = client.take(F.notify())
        let before = client
        #expect(client.take(.persistFailed(reason: "late")) == [])
        #expect(client.held == before.held)
    }
}

@Suite("OTAClient: Upgrade End Response and activation")
struct OTAClientActivationTests {
    @Test("upgrade time 0 activates the held image now")
    func activateNow() {
        var client = OTAClient.holding(F.image())
        let actions = client.take(F.endResponse())
        #expect(actions == [.activate(hash: F.hash), .respond(.success)])
    }

    @Test("an upgrade time on the virtual clock schedules a durable activation")
    func activateAtAbsoluteTime() {
        var client = OTAClient.holding(F.image())
        let due = F.now.adding(seconds: 3600)
        let actions = client.take(F.endResponse(currentTime: 0, upgradeTime: due.zigbeeUTC))
        #expect(actions == [
            .persist(.holdStatus(.waitingToUpgrade, activateAt: due)),
            .persist(.scheduleActivation(hash: F.hash, at: due)),
            .event(.scheduled(hash: F.hash, at: due)),
            .respond(.success),
        ])
        #expect(client.imageUpgradeStatus == .waitingToUpgrade)
        #expect(client.held?.activateAt == due)
        #expect(client.lastStep == .scheduled(due))
    }

    @Test("with a current time the upgrade time counts from the device's clock")
    func activateAtRelativeTime() {
        var client = OTAClient.holding(F.image())
        let actions = client.take(F.endResponse(currentTime: 1000, upgradeTime: 1060))
        #expect(actions.changes.last == .scheduleActivation(hash: F.hash, at: F.now.adding(seconds: 60)))
    }

    @Test("an upgrade time already past activates now")
    func pastTimeActivatesNow() {
        var client = OTAClient.holding(F.image())
        #expect(client.take(F.endResponse(currentTime: 0, upgradeTime: F.now.adding(seconds: -10).zigbeeUTC)).contains(.activate(hash: F.hash)))
        var relative = OTAClient.holding(F.image())
        #expect(relative.take(F.endResponse(currentTime: 1000, upgradeTime: 900)).contains(.activate(hash: F.hash)))
    }

    @Test("a later schedule replaces the earlier one, and activating now cancels it")
    func rescheduleAndCancel() {
        var client = OTAClient.holding(F.image())
        _ = client.take(F.endResponse(upgradeTime: F.now.adding(seconds: 3600).zigbeeUTC))
        let later = F.now.adding(seconds: 7200)
        let again = client.take(F.endResponse(upgradeTime: later.zigbeeUTC))
        #expect(again.changes == [.holdStatus(.waitingToUpgrade, activateAt: later), .scheduleActivation(hash: F.hash, at: later)])
        #expect(client.take(F.endResponse()) == [.persist(.cancelActivation), .activate(hash: F.hash), .respond(.success)])
    }

    @Test("upgrade time 0xFFFFFFFF holds the image until a command, cancelling a schedule")
    func waitForCommand() {
        var client = OTAClient.holding(F.image())
        let actions = client.take(F.endResponse(upgradeTime: 0xFFFF_FFFF))
        #expect(actions == [
            .persist(.holdStatus(.waitingToUpgrade, activateAt: nil)),
            .event(.waiting(hash: F.hash, fileVersion: FirmwareVersion(F.newVersion))),
            .respond(.success),
        ])
        #expect(client.imageUpgradeStatus == .waitingToUpgrade)
        #expect(client.lastStep == .waiting)
        var scheduled = OTAClient.holding(F.image())
        _ = scheduled.take(F.endResponse(upgradeTime: F.now.adding(seconds: 60).zigbeeUTC))
        let cancelled = scheduled.take(F.endResponse(upgradeTime: 0xFFFF_FFFF))
        #expect(cancelled.changes == [.holdStatus(.waitingToUpgrade, activateAt: nil), .cancelActivation])
        #expect(scheduled.held?.activateAt == nil)
    }

    @Test("wildcards in Upgrade End Response name the held image",
          arguments: [(UInt16(0xFFFF), UInt16(0x0001), UInt32(0x0103_0000)), (UInt16(0x1234), UInt16(0xFFFF), UInt32(0x0103_0000)),
                      (UInt16(0x1234), UInt16(0x0001), UInt32(0xFFFF_FFFF)), (UInt16(0xFFFF), UInt16(0xFFFF), UInt32(0xFFFF_FFFF))])
    func wildcardsMatch(manufacturer: UInt16, type: UInt16, version: UInt32) {
        var client = OTAClient.holding(F.image())
        #expect(client.take(F.endResponse(version: version, manufacturer: manufacturer, type: type)).contains(.activate(hash: F.hash)))
    }

    @Test("an Upgrade End Response for another image is ignored",
          arguments: [(UInt16(0x9999), UInt16(0x0001), UInt32(0x0103_0000)), (UInt16(0x1234), UInt16(0x0002), UInt32(0x0103_0000)),
                      (UInt16(0x1234), UInt16(0x0001), UInt32(0x0104_0000))])
    func otherImageIsIgnored(manufacturer: UInt16, type: UInt16, version: UInt32) {
        var client = OTAClient.holding(F.image())
        let before = client
        let actions = client.take(F.endResponse(version: version, manufacturer: manufacturer, type: type))
        #expect(actions == [.event(.ignored(server: F.hub, reason: "Upgrade End Response for an image the device does not hold")), .respond(.success)])
        #expect(client.held == before.held)
    }

    @Test("an Upgrade End Response with nothing held, or mid-download, is ignored")
    func nothingHeld() {
        var client = OTAClient()
        #expect(client.take(F.endResponse()).events.first == .ignored(server: F.hub, reason: "Upgrade End Response for an image the device does not hold"))
        let file = F.image().encoded()
        _ = client.serve(file, from: client.start(file), blocks: 1)
        #expect(!client.take(F.endResponse()).contains(.activate(hash: F.hash)))
    }

    @Test("a schedule that could not be stored is undone and answered with FAILURE")
    func scheduleNotStored() {
        var client = OTAClient.holding(F.image())
        let before = client
        _ = client.take(F.endResponse(upgradeTime: F.now.adding(seconds: 60).zigbeeUTC))
        let actions = client.take(.persistFailed(reason: "locked"))
        #expect(actions == [.event(.storeFailed(reason: "locked")), .respond(.failure)])
        #expect(client.held == before.held)
        #expect(client.imageUpgradeStatus == .downloadComplete)
        #expect(client.lastStep == before.lastStep)
    }

    @Test("activating now when the earlier schedule cannot be cancelled is answered FAILURE, the schedule kept")
    func cancelNotStored() {
        var client = OTAClient.holding(F.image())
        let due = F.now.adding(seconds: 60)
        _ = client.take(F.endResponse(upgradeTime: due.zigbeeUTC))
        #expect(client.take(F.endResponse()) == [.persist(.cancelActivation), .activate(hash: F.hash), .respond(.success)])
        #expect(client.take(.persistFailed(reason: "x")) == [.event(.storeFailed(reason: "x")), .respond(.failure)])
        #expect(client.held?.activateAt == due)
        #expect(client.lastStep == .scheduled(due))
    }

    @Test("a wait for command that could not be stored is undone")
    func waitNotStored() {
        var client = OTAClient.holding(F.image())
        _ = client.take(F.endResponse(upgradeTime: 0xFFFF_FFFF))
        #expect(client.take(.persistFailed(reason: "x")).last == .respond(.failure))
        #expect(client.imageUpgradeStatus == .downloadComplete)
    }

    @Test("Activate Firmware: no image held, another hash, or the held one now or later")
    func activationRequested() {
        var empty = OTAClient()
        #expect(empty.take(.activationRequested(hash: nil, at: nil)) == [.event(.activationFailed(.noImageHeld, reason: "the device holds no downloaded image"))])
        var client = OTAClient.holding(F.image())
        #expect(client.take(.activationRequested(hash: F.otherHash, at: nil))
            == [.event(.activationFailed(.hashMismatch, reason: "the device holds image \(F.hash), not \(F.otherHash)"))])
        #expect(client.take(.activationRequested(hash: F.hash.uppercased(), at: nil)) == [.activate(hash: F.hash)])
        #expect(client.take(.activationRequested(hash: nil, at: F.now)) == [.activate(hash: F.hash)], "a time not after now is now")
        let due = F.now.adding(seconds: 1)
        #expect(client.take(.activationRequested(hash: F.hash, at: due)).changes
            == [.holdStatus(.waitingToUpgrade, activateAt: due), .scheduleActivation(hash: F.hash, at: due)])
    }

    @Test("a due activation switches to the image it names, if still held")
    func activationDue() {
        var client = OTAClient.holding(F.image())
        #expect(client.take(.activationDue(hash: F.hash)) == [.activate(hash: F.hash)])
        #expect(client.take(.activationDue(hash: F.otherHash))
            == [.event(.activationFailed(.hashMismatch, reason: "the device holds image \(F.hash), not \(F.otherHash)"))])
        var empty = OTAClient()
        #expect(empty.take(.activationDue(hash: F.hash)) == [.event(.activationFailed(.noImageHeld, reason: "the device holds no downloaded image"))])
    }

    @Test("after an activation the device holds nothing and downloads nothing")
    func activated() {
        var client = OTAClient.holding(F.image())
        let file = F.image(version: 0x0105_0000).encoded()
        _ = client.serve(file, from: client.start(file, version: 0x0105_0000), blocks: 1)
        #expect(client.take(.activated(FirmwareVersion(F.newVersion))) == [])
        #expect(client.held == nil)
        #expect(client.phase == .idle)
        #expect(client.imageUpgradeStatus == .normal)
        #expect(client.fileOffset == 0)
        #expect(client.downloadedFileVersion == nil)
        #expect(client.lastStep == .activated(FirmwareVersion(F.newVersion)))
    }

    @Test("an activation failure is noted as the last step; a refusal for another reason is only told")
    func activationFailed() {
        var client = OTAClient.holding(F.image())
        let failure = client.take(.activationFailed(.activationFailure, reason: "MP202"))
        #expect(failure == [.event(.activationFailed(.activationFailure, reason: "MP202"))])
        #expect(client.lastStep == .activationFailed(.activationFailure, "MP202"))
        #expect(client.held != nil, "the image is still held")
        var other = OTAClient.holding(F.image())
        _ = other.take(.activationFailed(.noImageHeld, reason: "gone"))
        #expect(other.lastStep == .downloaded(hash: F.hash))
        other.forgetLastStep()
        #expect(other.lastStep == nil)
    }
}

@Suite("OTAClient: attributes, sequence numbers, a device without OTA")
struct OTAClientStateTests {
    @Test("the ZCL OTA client attributes read from the machine and the context")
    func attributes() {
        let client = OTAClient.holding(F.image())
        let context = F.context
        #expect(client.attribute(OTAAttribute.upgradeServerID, context: context) == .ieeeAddress(F.hub))
        #expect(client.attribute(OTAAttribute.fileOffset, context: context) == .uint32(UInt32(F.image().encoded().count)))
        #expect(client.attribute(OTAAttribute.currentFileVersion, context: context) == .uint32(F.running.rawValue))
        #expect(client.attribute(OTAAttribute.downloadedFileVersion, context: context) == .uint32(F.newVersion))
        #expect(client.attribute(OTAAttribute.imageUpgradeStatus, context: context) == .enum8(2))
        #expect(client.attribute(OTAAttribute.manufacturerID, context: context) == .uint16(F.manufacturer))
        #expect(client.attribute(OTAAttribute.imageTypeID, context: context) == .uint16(F.imageType))
        #expect(client.attribute(0x0003, context: context) == nil)
        var unjoined = context
        unjoined.upgradeServer = nil
        #expect(OTAClient().attribute(OTAAttribute.upgradeServerID, context: unjoined) == .ieeeAddress(EUI64(UInt64.max)))
        #expect(OTAClient().attribute(OTAAttribute.downloadedFileVersion, context: context) == .uint32(0xFFFF_FFFF))
        #expect(OTAClient().attribute(OTAAttribute.imageUpgradeStatus, context: context) == .enum8(0))
    }

    @Test("a device restored from the store holds its image with the status stored")
    func restoring() {
        let held = HeldFirmware(hash: F.hash, fileVersion: FirmwareVersion(F.newVersion), manufacturerCode: F.manufacturer, imageType: F.imageType,
                                status: .waitingToUpgrade, activateAt: F.now.adding(seconds: 5))
        var client = OTAClient(restoring: held)
        #expect(client.imageUpgradeStatus == .waitingToUpgrade)
        #expect(client.downloadedFileVersion == F.newVersion)
        #expect(client.fileOffset == 0)
        #expect(client.take(.activationDue(hash: F.hash)) == [.activate(hash: F.hash)])
        #expect(OTAClient(restoring: nil) == OTAClient())
    }

    @Test("each request is a new transaction; sequence numbers wrap; Upgrade End Requests use 0")
    func sequenceNumbers() {
        var client = OTAClient()
        var numbers: [UInt8] = []
        for _ in 0..<257 {
            for case let .send(_, _, sequence) in client.take(F.notify()) { numbers.append(sequence) }
        }
        #expect(numbers.prefix(3) == [1, 2, 3])
        #expect(numbers[254...256] == [255, 0, 1])
    }

    @Test("a model without the OTA cluster answers every command UNSUPPORTED_CLUSTER and changes nothing")
    func withoutOTA() {
        var context = F.context
        context.hasOTA = false
        var client = OTAClient()
        let file = F.image().encoded()
        let commands: [OTAClient.Input] = [
            F.notify(), F.queryResponse(F.offered(file)), .command(.imageBlockResponse(.failure(.abort)), from: F.hub), F.endResponse(),
        ]
        for command in commands {
            #expect(client.take(command, context: context) == [.respond(.unsupportedCluster)])
        }
        #expect(client.take(.activationRequested(hash: nil, at: nil), context: context) == [])
        #expect(client == OTAClient())
        #expect(client.attribute(OTAAttribute.fileOffset, context: context) == nil)
    }

    @Test("only an Upgrade End Response, a verdict and the activation inputs may change the store")
    func whichInputsMayChangeTheStore() {
        let durable: [OTAClient.Input] = [F.endResponse(), .verdict(.rejected(FirmwareVerdict(checks: []))),
                                          .activationRequested(hash: nil, at: nil), .activationDue(hash: F.hash)]
        let inPlace: [OTAClient.Input] = [F.notify(), F.queryResponse(F.offered([1])), .command(.imageBlockResponse(.failure(.abort)), from: F.hub),
                                          .persistFailed(reason: "x"), .activated(F.running), .activationFailed(.noImageHeld, reason: "x")]
        #expect(durable.map(\.mayChangeStore) == [true, true, true, true])
        #expect(inPlace.map(\.mayChangeStore) == [false, false, false, false, false, false])
    }

    @Test("the context of a model takes its identity and block size")
    func contextOfAModel() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("devices/models/acme-ppmid-dm.json")
        let model = try JSONDecoder().decode(DeviceModel.self, from: Data(contentsOf: file))
        let context = OTAClient.Context(model: model, runningFirmware: FirmwareVersion(7), maxImageBytes: 10)
        #expect(context.manufacturerCode == 0x1234 && context.imageType == 0x0001 && context.hardwareVersion == model.hardwareVersion)
        #expect(context.maxImageBlockBytes == 200 && context.maxImageBytes == 10 && context.runningFirmware == FirmwareVersion(7))
        #expect(context.hasOTA && context.upgradeServer == nil)
    }
}
