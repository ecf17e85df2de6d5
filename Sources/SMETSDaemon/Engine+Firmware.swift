import Crypto
import Dispatch
import Foundation
import SMETSCore
import SMETSRPC
import SMETSStore
import SMETSWire
import Synchronization

/// A device's OTA state: the ZCL OTA Upgrade client attributes, the download in progress, the
/// image it holds, and (for a Communications Hub) the images it serves as OTA server.
public struct DeviceFirmwareState: Sendable, Hashable {
    public var fileOffset: UInt32 = 0
    public var downloadedFileVersion: UInt32?
    /// 0 normal, 1 downloading, 2 download complete, 3 waiting to upgrade.
    public var imageUpgradeStatus: UInt8 = 0
    /// The download in progress: kept when a link breaks, so that it resumes from `fileOffset`.
    var download: FirmwareDownload?
    /// The validated image the device holds until it activates it (also in the store).
    var held: HeldFirmware?
    /// What happened last, for `firmware.update` to report.
    var last: FirmwareStep?
    /// A hub's offers as OTA server, by client device.
    var serving: [EUI64: ServedImage] = [:]
    var sequence: UInt8 = 0
    var reportedPercent = -1
}

/// An image a Communications Hub serves to one client.
struct ServedImage: Hashable, Sendable {
    var file: [UInt8]
    var header: OTAImageHeader
    var hash: String
    var activation: FirmwareActivationTime
    /// The client's Upgrade End Request status, once it sent one.
    var endStatus: UInt8?
}

/// When a served image is to be activated: what the hub's Upgrade End Response says.
public enum FirmwareActivationTime: Hashable, Sendable {
    case now
    case at(Timestamp)
    /// Upgrade time 0xFFFFFFFF: wait for `firmware.activate` (or another Upgrade End Response).
    case later
}

/// The last step of a device's OTA client, for reports.
enum FirmwareStep: Hashable, Sendable {
    case downloading
    case downloaded(hash: String)
    case rejected(FirmwareVerdict)
    case aborted(String)
    case noImage(UInt8)
    case activated(FirmwareVersion)
    case scheduled(Timestamp)
    case waiting
    case activationFailed(ActivationOutcome, String)
}

/// A scheduled activation, as the job's payload.
struct PendingActivation: Codable {
    var device: String
    var hash: String
}

/// What an activation did.
public struct ActivationReport: Sendable {
    public var outcome: ActivationOutcome
    public var reason: String
    public var device: Device?
    public var scheduledAt: Timestamp?
}

/// One target's outcome of `firmware.update`.
public struct FirmwareUpdateResult: Sendable {
    public var device: EUI64
    /// activated, scheduled, waiting, rejected, refused, aborted, failed.
    public var outcome: String
    public var reason: String
    public var checks: [FirmwareCheck]
    public var activateAt: Timestamp?
    public var firmwareVersion: FirmwareVersion?
}

extension Engine {
    
    func firmwareState(_ id: EUI64) -> DeviceFirmwareState { firmwareStates.withLock { $0[id] ?? DeviceFirmwareState() } }

    /// The held images of the store, as OTA client state: read once when the engine starts.
    static func restoredFirmware(_ store: StateStore) throws -> [EUI64: DeviceFirmwareState] {
        try store.read { try $0.allHeldFirmware() }.mapValues { held in
            var state = DeviceFirmwareState()
            state.held = held
            state.imageUpgradeStatus = held.status.rawValue
            state.downloadedFileVersion = held.fileVersion.rawValue
            return state
        }
    }

    // MARK: dispatch

    /// OTA Upgrade cluster commands: a PPMID or IHD is the OTA client, a CHF the server. Nil lets
    /// the caller answer UNSUP_CLUSTER_COMMAND.
    func otaCommand(device: Device, source: EUI64, frame: ZCLFrame, reply: @escaping @Sendable ([ZCLFrame]) -> [OutgoingZCL]) -> ZCLHandling? {
        guard frame.header.frameType == .clusterSpecific else { return nil }
        // Built only when needed: this runs for every block of every transfer.
        var malformed: ZCLHandling { .now(reply(Self.defaultResponse(to: frame, status: .malformedCommand))) }
        let id = device.id
        if device.type.isDisplay && frame.header.direction == .serverToClient {
            switch frame.header.commandID {
            case OTACommandID.imageNotify:
                guard let notify = try? frame.decodePayload(as: ImageNotify.self) else { return malformed }
                return .now(reply(clientImageNotify(id, from: source, notify)))
            case OTACommandID.queryNextImageResponse:
                guard let response = try? frame.decodePayload(as: QueryNextImageResponse.self) else { return malformed }
                return .now(reply(clientQueryResponse(id, from: source, response)))
            case OTACommandID.imageBlockResponse:
                guard let response = try? frame.decodePayload(as: ImageBlockResponse.self) else { return malformed }
                switch clientBlockResponse(id, from: source, response) {
                case .frames(let frames): return .now(reply(frames))
                case .complete: return .blocking { [self] in reply(self.completeDownload(id, from: source)) }
                }
            case OTACommandID.upgradeEndResponse:
                guard let response = try? frame.decodePayload(as: UpgradeEndResponse.self) else { return malformed }
                return .blocking { [self] in
                    self.clientUpgradeEndResponse(id, from: source, response)
                    return reply(Self.defaultResponse(to: frame, status: .success))
                }
            default:
                return nil
            }
        }
        if device.type == .chf && frame.header.direction == .clientToServer {
            switch frame.header.commandID {
            case OTACommandID.queryNextImageRequest:
                guard let request = try? frame.decodePayload(as: QueryNextImageRequest.self) else { return malformed }
                let response = serverQuery(hub: id, client: source, request)
                return .now(reply([respond(to: frame, with: response)]))
            case OTACommandID.imageBlockRequest:
                guard let request = try? frame.decodePayload(as: ImageBlockRequest.self) else { return malformed }
                let response = serverBlock(hub: id, client: source, request)
                return .now(reply([respond(to: frame, with: response)]))
            case OTACommandID.upgradeEndRequest:
                guard let request = try? frame.decodePayload(as: UpgradeEndRequest.self) else { return malformed }
                guard let response = serverUpgradeEnd(hub: id, client: source, request) else {
                    return .now(reply(Self.defaultResponse(to: frame, status: .success)))
                }
                return .now(reply([respond(to: frame, with: response)]))
            default:
                return nil
            }
        }
        return nil
    }

    private func respond<C: ZCLClusterCommand>(to frame: ZCLFrame, with command: C) -> ZCLFrame {
        ZCLFrame(command, sequenceNumber: frame.header.sequenceNumber, disableDefaultResponse: true)
    }

    /// A new transaction of the device's OTA client.
    private func request<C: ZCLClusterCommand>(_ command: C, sequence: UInt8) -> ZCLFrame {
        ZCLFrame(command, sequenceNumber: sequence, disableDefaultResponse: true)
    }

    // MARK: the device as OTA client

    /// Image Notify: query the notifier for the image, unless it names another manufacturer or type.
    func clientImageNotify(_ id: EUI64, from server: EUI64, _ notify: ImageNotify) -> [ZCLFrame] {
        let query = state.withLock { state -> (QueryNextImageRequest, UInt8)? in firmwareStates.withLock { states -> (QueryNextImageRequest, UInt8)? in
            guard let device = state.devices[id], let model = state.lab.models[device.modelKey] else { return nil }
            if let code = notify.manufacturerCode, code != 0xFFFF, code != model.manufacturer.numericCode { return nil }
            if let type = notify.imageType, type != 0xFFFF, type != model.numericImageType { return nil }
            let presented = state.lab.cpl.presentedFirmware(model: model, firmware: device.firmwareVersion, mode: device.mode, regime: state.lab.regime)
            var firmware = states[id] ?? DeviceFirmwareState()
            firmware.sequence &+= 1
            states[id] = firmware
            let request = QueryNextImageRequest(manufacturerCode: model.manufacturer.numericCode, imageType: model.numericImageType,
                                                currentFileVersion: presented.rawValue, hardwareVersion: model.hardwareVersion)
            return (request, firmware.sequence)
        } }
        var data: [String: JSONValue] = ["server": .string(server.description)]
        if let version = notify.newFileVersion { data["fileVersion"] = .string(upperHex(version, width: 8)) }
        data["accepted"] = .bool(query != nil)
        events.publish(.firmwareNotified, device: id, time: now(), data: data)
        guard let (query, sequence) = query else { return [] }
        return [request(query, sequence: sequence)]
    }

    /// Query Next Image Response: start (or resume) the download, or note that there is none.
    func clientQueryResponse(_ id: EUI64, from server: EUI64, _ response: QueryNextImageResponse) -> [ZCLFrame] {
        guard case let .success(code, type, version, size) = response else {
            firmwareStates.withLock { $0[id, default: DeviceFirmwareState()].last = .noImage(response.statusCode) }
            events.publish(.firmwareNoImage, device: id, time: now(),
                           data: ["server": .string(server.description), "status": .string(ZCLStatus.describe(response.statusCode))])
            return []
        }
        let offered = OfferedImage(manufacturerCode: code, imageType: type, fileVersion: version, imageSize: size)
        enum Start { case request(ImageBlockRequest, UInt8, resumed: UInt32), tooLarge(Int), gone }
        let start = state.withLock { state -> Start in firmwareStates.withLock { states -> Start in
            guard let device = state.devices[id], let model = state.lab.models[device.modelKey] else { return .gone }
            var firmware = states[id] ?? DeviceFirmwareState()
            let limit = state.lab.settings.maxImageBytes
            guard Int(size) <= limit, size > 0 else { return .tooLarge(limit) }
            if firmware.download?.server != server || firmware.download?.image != offered {
                firmware.download = FirmwareDownload(server: server, image: offered)
            }
            let download = firmware.download!
            firmware.fileOffset = download.fileOffset
            firmware.imageUpgradeStatus = ImageUpgradeStatus.downloading.rawValue
            firmware.last = .downloading
            firmware.reportedPercent = -1
            firmware.sequence &+= 1
            states[id] = firmware
            let request = ImageBlockRequest(manufacturerCode: code, imageType: type, fileVersion: version, fileOffset: download.fileOffset,
                                            maximumDataSize: download.nextBlockSize(maxImageBlockBytes: model.maxImageBlockBytes))
            return .request(request, firmware.sequence, resumed: download.fileOffset)
        } }
        let time = now()
        switch start {
        case .gone:
            return []
        case .tooLarge(let limit):
            let reason = "the offered image is \(size) bytes; the limit is \(limit) (maxImageBytes)"
            firmwareStates.withLock { $0[id, default: DeviceFirmwareState()].last = .aborted(reason) }
            events.publish(.firmwareRejected, device: id, time: time, data: ["fileVersion": .string(upperHex(version, width: 8)), "reason": .string(reason)])
            return [request(UpgradeEndRequest(status: .invalidImage, manufacturerCode: code, imageType: type, fileVersion: version), sequence: 0)]
        case let .request(block, sequence, resumed):
            events.publish(.firmwareDownloadStarted, device: id, time: time, data: [
                "server": .string(server.description), "fileVersion": .string(upperHex(version, width: 8)),
                "imageSize": .int(Int64(size)), "resumedFrom": .int(Int64(resumed)),
            ])
            return [request(block, sequence: sequence)]
        }
    }

    enum BlockStep { case frames([ZCLFrame]), complete }

    /// Image Block Response: keep the block and ask for the next, or finish.
    func clientBlockResponse(_ id: EUI64, from server: EUI64, _ response: ImageBlockResponse) -> BlockStep {
        switch response {
        case let .success(code, type, version, offset, data):
            enum Next { case ask(ImageBlockRequest, UInt8, progress: (UInt32, UInt32)?), complete, abort(String, OfferedImage), ignore }
            let next = state.withLock { state -> Next in firmwareStates.withLock { states -> Next in
                guard let device = state.devices[id], let model = state.lab.models[device.modelKey],
                      var firmware = states[id], var download = firmware.download, download.server == server else { return .ignore }
                // Let go of the other references to the bytes so far (the state's and the copy's), so
                // that appending the block grows them in place instead of copying the whole file so
                // far on every block (quadratic: a 1 MiB image in 200-byte blocks copied 2.7 GB).
                // Every path below stores `firmware` back.
                states[id]?.download = nil
                firmware.download = nil
                let outcome = download.accept(manufacturerCode: code, imageType: type, fileVersion: version, fileOffset: offset, data: data)
                if case .invalid(let reason) = outcome {
                    firmware.download = nil
                    firmware.fileOffset = 0
                    firmware.imageUpgradeStatus = firmware.held?.status.rawValue ?? ImageUpgradeStatus.normal.rawValue
                    firmware.last = .aborted(reason)
                    states[id] = firmware
                    return .abort(reason, download.image)
                }
                firmware.download = download
                firmware.fileOffset = download.fileOffset
                if case .accepted(complete: true) = outcome {
                    states[id] = firmware
                    return .complete
                }
                var progress: (UInt32, UInt32)?
                let percent = Int(UInt64(download.fileOffset) * 100 / UInt64(max(1, download.image.imageSize)))
                if percent != firmware.reportedPercent {
                    firmware.reportedPercent = percent
                    progress = (download.fileOffset, download.image.imageSize)
                }
                firmware.sequence &+= 1
                states[id] = firmware
                let image = download.image
                let request = ImageBlockRequest(manufacturerCode: image.manufacturerCode, imageType: image.imageType, fileVersion: image.fileVersion,
                                                fileOffset: download.fileOffset,
                                                maximumDataSize: download.nextBlockSize(maxImageBlockBytes: model.maxImageBlockBytes))
                return .ask(request, firmware.sequence, progress: progress)
            } }
            switch next {
            case .ignore:
                return .frames([])
            case .complete:
                return .complete
            case let .ask(request, sequence, progress):
                if let (offset, size) = progress { publishProgress(id, server: server, offset: offset, size: size) }
                return .frames([self.request(request, sequence: sequence)])
            case let .abort(reason, image):
                events.publish(.firmwareAborted, device: id, time: now(), data: ["server": .string(server.description), "reason": .string(reason)])
                return .frames([request(UpgradeEndRequest(status: .invalidImage, manufacturerCode: image.manufacturerCode, imageType: image.imageType,
                                                          fileVersion: image.fileVersion), sequence: 0)])
            }
        case let .waitForData(currentTime, requestTime, _):
            // Asked to wait: with no delay, ask again at once; otherwise the download stays at its
            // FileOffset and resumes at the server's next Image Notify.
            events.publish(.firmwareWaitForData, device: id, time: now(), data: [
                "server": .string(server.description), "currentTime": .int(Int64(currentTime)), "requestTime": .int(Int64(requestTime)),
            ])
            guard requestTime <= currentTime else { return .frames([]) }
            let again = state.withLock { state -> (ImageBlockRequest, UInt8)? in firmwareStates.withLock { states -> (ImageBlockRequest, UInt8)? in
                guard let device = state.devices[id], let model = state.lab.models[device.modelKey],
                      var firmware = states[id], let download = firmware.download, download.server == server else { return nil }
                firmware.sequence &+= 1
                states[id] = firmware
                let image = download.image
                return (ImageBlockRequest(manufacturerCode: image.manufacturerCode, imageType: image.imageType, fileVersion: image.fileVersion,
                                          fileOffset: download.fileOffset, maximumDataSize: download.nextBlockSize(maxImageBlockBytes: model.maxImageBlockBytes)),
                        firmware.sequence)
            } }
            return .frames(again.map { [request($0.0, sequence: $0.1)] } ?? [])
        case .failure(let status):
            let reason = "the server answered Image Block Request with \(ZCLStatus.describe(status))"
            let had = state.withLock { state -> Bool in firmwareStates.withLock { states -> Bool in
                guard var firmware = states[id], firmware.download?.server == server else { return false }
                firmware.download = nil
                firmware.fileOffset = 0
                firmware.imageUpgradeStatus = firmware.held?.status.rawValue ?? ImageUpgradeStatus.normal.rawValue
                firmware.last = .aborted(reason)
                states[id] = firmware
                return true
            } }
            if had { events.publish(.firmwareAborted, device: id, time: now(), data: ["server": .string(server.description), "reason": .string(reason)]) }
            return .frames([])
        }
    }

    private func publishProgress(_ id: EUI64, server: EUI64, offset: UInt32, size: UInt32) {
        // Not logged, so without a subscriber there is no one to tell (a hub push of 10,000 images
        // would build a million of them).
        guard events.hasSubscribers(for: .firmwareProgress) else { return }
        events.publish(.firmwareProgress, device: id, time: now(), data: [
            "server": .string(server.description), "fileOffset": .int(Int64(offset)), "imageSize": .int(Int64(size)),
            "percent": .int(Int64(UInt64(offset) * 100 / UInt64(max(1, size)))),
        ], level: .debug, log: false)
    }

    /// The whole file is in: check it against the firmware rules, keep it (once, by hash) if it
    /// passes, and tell the server with Upgrade End Request SUCCESS or INVALID_IMAGE.
    func completeDownload(_ id: EUI64, from server: EUI64) -> [ZCLFrame] {
        let context = state.withLock { state -> (FirmwareDownload, Device, DeviceModel, LabSnapshot)? in firmwareStates.withLock { states -> (FirmwareDownload, Device, DeviceModel, LabSnapshot)? in
            guard let firmware = states[id], let download = firmware.download, download.isComplete,
                  let device = state.devices[id], let model = state.lab.models[device.modelKey] else { return nil }
            return (download, device, model, state.lab)
        } }
        guard let (download, device, model, lab) = context else { return [] }
        let offered = download.image
        publishProgress(id, server: server, offset: download.fileOffset, size: offered.imageSize)
        let (verdict, image) = Self.check(file: download.received, device: device, model: model, lab: lab)
        let time = now()
        let endFor: (ZCLStatus) -> ZCLFrame = { status in
            self.request(UpgradeEndRequest(status: status, manufacturerCode: offered.manufacturerCode, imageType: offered.imageType,
                                           fileVersion: offered.fileVersion), sequence: 0)
        }
        if let image, verdict.accepted {
            let hash = Self.imageHash(image.manufacturerImage)
            let held = HeldFirmware(hash: hash, fileVersion: FirmwareVersion(image.header.fileVersion), manufacturerCode: image.header.manufacturerCode,
                                    imageType: image.header.imageType, status: .downloadComplete, server: server)
            do {
                try serialized { _ in
                    try store.write { tx in
                        // Most devices take an image the store already holds (a hub push to thousands):
                        // then there is no need to hand SQLite the whole image only to skip it.
                        if try !tx.firmwareImageExists(hash: hash) {
                            try tx.saveFirmwareImage(hash: hash, manufacturerImage: image.manufacturerImage, at: time)
                        }
                        try tx.saveHeldFirmware(held, device: id, header: image.header.encoded(), signature: image.signature, at: time)
                    }
                    firmwareStates.withLock { states in
                        var firmware = states[id] ?? DeviceFirmwareState()
                        firmware.download = nil
                        firmware.held = held
                        firmware.fileOffset = offered.imageSize
                        firmware.downloadedFileVersion = image.header.fileVersion
                        firmware.imageUpgradeStatus = ImageUpgradeStatus.downloadComplete.rawValue
                        firmware.last = .downloaded(hash: hash)
                        states[id] = firmware
                    }
                }
            } catch {
                logger.error("could not keep a downloaded image", metadata: ["event": "firmware.storeFailed", "device_id": .string(id.description), "error": .string("\(error)")])
                resetDownload(id, last: .aborted("the image could not be stored: \(error)"))
                return [endFor(.abort)]
            }
            events.publish(.firmwareDownloaded, device: id, time: time, data: [
                "server": .string(server.description), "hash": .string(hash), "fileVersion": .string(held.fileVersion.hex),
                "imageSize": .int(Int64(offered.imageSize)),
            ])
            return [endFor(.success)]
        }
        resetDownload(id, last: .rejected(verdict))
        events.publish(.firmwareRejected, device: id, time: time, data: [
            "server": .string(server.description), "fileVersion": .string(upperHex(offered.fileVersion, width: 8)),
            "reason": .string(verdict.summary), "failed": .array(verdict.failures.map { .string($0.name) }),
        ], level: .warning)
        return [endFor(.invalidImage)]
    }

    private func resetDownload(_ id: EUI64, last: FirmwareStep) {
        state.withLock { state in firmwareStates.withLock { states in
            var firmware = states[id] ?? DeviceFirmwareState()
            firmware.download = nil
            firmware.fileOffset = 0
            firmware.imageUpgradeStatus = firmware.held?.status.rawValue ?? ImageUpgradeStatus.normal.rawValue
            firmware.last = last
            states[id] = firmware
        } }
    }

    /// Upgrade End Response: activate now, at a time on the virtual clock, or wait for a command.
    func clientUpgradeEndResponse(_ id: EUI64, from server: EUI64, _ response: UpgradeEndResponse) {
        let held = state.withLock { state -> HeldFirmware? in firmwareStates.withLock { states -> HeldFirmware? in
            guard let held = states[id]?.held, [.downloadComplete, .waitingToUpgrade].contains(held.status) else { return nil }
            let codeMatches = response.manufacturerCode == held.manufacturerCode || response.manufacturerCode == 0xFFFF
            let typeMatches = response.imageType == held.imageType || response.imageType == 0xFFFF
            let versionMatches = response.fileVersion == held.fileVersion.rawValue || response.fileVersion == 0xFFFF_FFFF
            return codeMatches && typeMatches && versionMatches ? held : nil
        } }
        guard let held else {
            events.publish(.firmwareIgnored, device: id, time: now(), data: [
                "server": .string(server.description), "reason": .string("Upgrade End Response for an image the device does not hold"),
            ], level: .debug)
            return
        }
        let time = now()
        switch UpgradeSchedule.decide(currentTime: response.currentTime, upgradeTime: response.upgradeTime, now: time) {
        case .now:
            do {
                _ = try serialized { state in try activateLocked(id, hash: held.hash, state: &state, now: time) }
            } catch {
                logger.error("could not activate a downloaded image", metadata: ["event": "firmware.activationFailed", "device_id": .string(id.description), "error": .string("\(error)")])
            }
        case .at(let due):
            do {
                try serialized { state in try scheduleActivationLocked(id, hash: held.hash, at: due, state: &state, now: time) }
            } catch {
                logger.error("could not schedule an activation", metadata: ["event": "firmware.scheduleFailed", "error": .string("\(error)")])
            }
        case .waitForCommand:
            do {
                try serialized { _ in
                    _ = try store.write { try $0.updateHeldFirmware(device: id, status: .waitingToUpgrade, activateAt: nil) }
                    firmwareStates.withLock { states in
                        var firmware = states[id] ?? DeviceFirmwareState()
                        firmware.held?.status = .waitingToUpgrade
                        firmware.held?.activateAt = nil
                        firmware.imageUpgradeStatus = ImageUpgradeStatus.waitingToUpgrade.rawValue
                        firmware.last = .waiting
                        states[id] = firmware
                    }
                }
            } catch {
                logger.error("could not record a wait for activation", metadata: ["event": "firmware.storeFailed", "error": .string("\(error)")])
            }
            events.publish(.firmwareWaiting, device: id, time: time, data: ["hash": .string(held.hash), "fileVersion": .string(held.fileVersion.hex)])
        }
    }

    // MARK: checking an image

    /// Reads `file` and runs every firmware rule for `device`. The image is nil when the file
    /// cannot be read (then the verdict holds only the failed `format` check).
    static func check(file: [UInt8], device: Device, model: DeviceModel, lab: LabSnapshot) -> (FirmwareVerdict, OTAImage?) {
        let image: OTAImage
        do {
            image = try OTAImage(parsing: file, options: .init(maxImageBytes: lab.settings.maxImageBytes))
        } catch {
            return (FirmwareRules.unreadable("\(error.reason): \(error.description)"), nil)
        }
        let target = FirmwareTarget(model: model, device: device.id, mode: device.mode, currentFirmware: device.firmwareVersion)
        let verdict = FirmwareRules.check(image.firmwareCandidate, format: image.formatDescription, for: target, cpl: lab.cpl, regime: lab.regime,
                                          maxImageBytes: lab.settings.maxImageBytes, key: signingKey(for: model, labDirectory: lab.directory))
        return (verdict, image)
    }

    /// The model's signing key, read from its PEM file under the devices folder. The file is read
    /// every time (so a changed key counts at once); the parsed key is reused while its text is the same.
    static func signingKey(for model: DeviceModel, labDirectory: String) -> SigningKey {
        guard let relative = model.signingKey, !relative.isEmpty else { return .none }
        let path = relative.hasPrefix("/") ? relative : labDirectory + "/" + relative
        guard let data = FileManager.default.contents(atPath: path), let pem = String(data: data, encoding: .utf8) else {
            return .unavailable("cannot read \(path)")
        }
        if let cached = parsedKeys.withLock({ $0[path] }), cached.pem == pem { return .loaded(cached.verifier) }
        do {
            let verifier = P256Verifier(key: try P256.Signing.PublicKey(pemRepresentation: pem))
            parsedKeys.withLock { $0[path] = (pem, verifier) }
            return .loaded(verifier)
        } catch {
            return .unavailable("\(path) is not a P-256 public key in PEM: \(error)")
        }
    }

    /// Keys parsed from PEM, by path, with the text they came from.
    private static let parsedKeys = Mutex<[String: (pem: String, verifier: P256Verifier)]>([:])

    /// SHA-256 of a Manufacturer Image, lowercase hex: the image's identity.
    static func imageHash(_ manufacturerImage: [UInt8]) -> String { lowerHex(SHA256.hash(data: manufacturerImage)) }

    // MARK: the hub as OTA server

    func serverQuery(hub: EUI64, client: EUI64, _ request: QueryNextImageRequest) -> QueryNextImageResponse {
        state.withLock { state in firmwareStates.withLock { states in
            guard let served = states[hub]?.serving[client] else { return .failure(.noImageAvailable) }
            let header = served.header
            guard header.manufacturerCode == request.manufacturerCode || header.isWildcardManufacturer,
                  header.imageType == request.imageType else { return .failure(.noImageAvailable) }
            return .success(manufacturerCode: header.manufacturerCode, imageType: header.imageType, fileVersion: header.fileVersion,
                            imageSize: UInt32(truncatingIfNeeded: served.file.count))
        } }
    }

    func serverBlock(hub: EUI64, client: EUI64, _ request: ImageBlockRequest) -> ImageBlockResponse {
        state.withLock { state in firmwareStates.withLock { states in
            guard let served = states[hub]?.serving[client] else { return .failure(.noImageAvailable) }
            let header = served.header
            guard header.manufacturerCode == request.manufacturerCode, header.imageType == request.imageType,
                  header.fileVersion == request.fileVersion, Int(request.fileOffset) < served.file.count, request.maximumDataSize > 0 else {
                return .failure(.abort)
            }
            let start = Int(request.fileOffset)
            let end = min(served.file.count, start + Int(request.maximumDataSize))
            return .success(manufacturerCode: header.manufacturerCode, imageType: header.imageType, fileVersion: header.fileVersion,
                            fileOffset: request.fileOffset, data: Array(served.file[start..<end]))
        } }
    }

    func serverUpgradeEnd(hub: EUI64, client: EUI64, _ request: UpgradeEndRequest) -> UpgradeEndResponse? {
        let (served, now) = state.withLock { state -> (ServedImage?, Timestamp) in firmwareStates.withLock { states -> (ServedImage?, Timestamp) in
            let now = state.clock.now(real: realNow())
            guard var served = states[hub]?.serving[client] else { return (nil, now) }
            served.endStatus = request.statusCode
            states[hub]?.serving[client] = served
            return (served, now)
        } }
        events.publish(.firmwareUpgradeEnd, device: hub, time: now, data: [
            "client": .string(client.description), "status": .string(ZCLStatus.describe(request.statusCode)),
            "fileVersion": .string(upperHex(request.fileVersion, width: 8)),
        ])
        guard let served, request.statusCode == ZCLStatus.success.rawValue else { return nil }
        let upgradeTime: UInt32 = switch served.activation {
        case .now: 0
        case .at(let time): time.zigbeeUTC
        case .later: UpgradeEndResponse.waitForUpgradeCommand
        }
        return UpgradeEndResponse(manufacturerCode: served.header.manufacturerCode, imageType: served.header.imageType,
                                  fileVersion: served.header.fileVersion, currentTime: now.zigbeeUTC, upgradeTime: upgradeTime)
    }

    // MARK: firmware.update: the emulated hub pushes an image

    /// Reads an image for `firmware.update`: the typed reason when it cannot be read.
    public func readImage(_ file: [UInt8]) throws -> OTAImage {
        let limit = state.withLock { $0.lab.settings.maxImageBytes }
        do {
            return try OTAImage(parsing: file, options: .init(maxImageBytes: limit))
        } catch {
            throw DomainError(.invalidState, "the image cannot be read (\(error.reason)): \(error.description)")
        }
    }

    /// Each target's Communications Hub serves `file` to it over the emulated HAN: Image Notify,
    /// then the device's own OTA client runs the handshake (query, blocks, validation, Upgrade End)
    /// exactly as with a rig, and activates as `activation` says.
    public func updateFirmware(file: [UInt8], targets: [EUI64], activation: FirmwareActivationTime) throws -> (hash: String, results: [FirmwareUpdateResult]) {
        let image = try readImage(file)
        let hash = Self.imageHash(image.manufacturerImage)
        let time = now()
        _ = try store.write { try $0.saveFirmwareImage(hash: hash, manufacturerImage: image.manufacturerImage, at: time) }
        events.publish(.firmwareOffered, time: time, data: [
            "hash": .string(hash), "fileVersion": .string(upperHex(image.header.fileVersion, width: 8)),
            "imageSize": .int(Int64(file.count)), "targets": .array(targets.map { .string($0.description) }),
        ])
        // The transfers are independent and CPU-bound (a 256 KiB image is some 2,600 frames carried
        // in memory), so they run on as many threads as there are cores. Every occurrence of one
        // device goes to the same thread, in the order given, so a device listed twice is still
        // served twice one after the other; results come back in the order of `targets`.
        let workers = max(1, min(targets.count, ProcessInfo.processInfo.activeProcessorCount, Self.maxParallelPushes))
        var lanes = [[Int]](repeating: [], count: workers)
        var laneOf: [EUI64: Int] = [:]
        for (index, target) in targets.enumerated() {
            let lane = laneOf[target] ?? (laneOf.count % workers)
            laneOf[target] = lane
            lanes[lane].append(index)
        }
        let results = Mutex([FirmwareUpdateResult?](repeating: nil, count: targets.count))
        let work = lanes
        DispatchQueue.concurrentPerform(iterations: workers) { lane in
            for index in work[lane] {
                let result = push(file: file, image: image, hash: hash, to: targets[index], activation: activation)
                results.withLock { $0[index] = result }
            }
        }
        return (hash, results.withLock { $0.compactMap { $0 } })
    }

    /// At most this many `firmware.update` transfers at once (further limited by the cores).
    static let maxParallelPushes = 8

    private func push(file: [UInt8], image: OTAImage, hash: String, to id: EUI64, activation: FirmwareActivationTime) -> FirmwareUpdateResult {
        var result = FirmwareUpdateResult(device: id, outcome: "failed", reason: "", checks: [], activateAt: nil, firmwareVersion: nil)
        enum Route { case hub(EUI64), refused(String, [FirmwareCheck]) }
        let route = state.withLock { state -> Route in firmwareStates.withLock { states -> Route in
            guard let device = state.devices[id] else { return .refused("no device \(id)", []) }
            guard device.type.isDisplay else { return .refused("a \(device.type) is not an OTA client of its hub; firmware goes to PPMIDs and IHDs", []) }
            guard let hub = device.hub, state.devices[hub]?.type == .chf else { return .refused("\(id) has not joined a Communications Hub", []) }
            guard let model = state.lab.models[device.modelKey] else { return .refused("no model \(device.modelKey)", []) }
            if model.type == .ppmid, model.isDualMode, let refusal = MP202.otaRefusal(mode: device.mode) {
                return .refused(refusal, [FirmwareCheck("mp202Requirement7", .fail, refusal)])
            }
            var served = states[hub] ?? DeviceFirmwareState()
            served.serving[id] = ServedImage(file: file, header: image.header, hash: hash, activation: activation)
            states[hub] = served
            states[id, default: DeviceFirmwareState()].last = nil
            return .hub(hub)
        } }
        let hub: EUI64
        switch route {
        case let .refused(reason, checks):
            result.outcome = "refused"
            result.reason = reason
            result.checks = checks
            events.publish(.firmwareRefused, device: id, time: now(), data: ["reason": .string(reason), "hash": .string(hash)], level: .warning)
            return result
        case let .hub(found):
            hub = found
        }
        let notify = ImageNotify(queryJitter: 100, manufacturerCode: image.header.manufacturerCode, imageType: image.header.imageType,
                                 newFileVersion: image.header.fileVersion)
        let first = OutgoingZCL(from: hub, to: id, cluster: ZCLClusterID.otaUpgrade,
                                frame: ZCLFrame(notify, sequenceNumber: UInt8.random(in: 0...255), disableDefaultResponse: true))
        exchange(first, between: hub, and: id, limit: file.count + 64)
        let (last, served, device) = state.withLock { state -> (FirmwareStep?, ServedImage?, Device?) in firmwareStates.withLock { states -> (FirmwareStep?, ServedImage?, Device?) in
            let served = states[hub]?.serving.removeValue(forKey: id)
            return (states[id]?.last, served, state.devices[id])
        } }
        result.firmwareVersion = device?.firmwareVersion
        switch last {
        case .activated(let version)?:
            result.outcome = "activated"
            result.reason = "running \(version.hex)"
        case .scheduled(let due)?:
            result.outcome = "scheduled"
            result.activateAt = due
            result.reason = "activation at \(due.rfc3339)"
        case .waiting?:
            result.outcome = "waiting"
            result.reason = "holding the image until firmware.activate"
        case .rejected(let verdict)?:
            result.outcome = "rejected"
            result.reason = verdict.summary
            result.checks = verdict.checks
        case .aborted(let reason)?:
            result.outcome = "aborted"
            result.reason = reason
        case .noImage(let status)?:
            result.outcome = "aborted"
            result.reason = "the hub answered the query with \(ZCLStatus.describe(status))"
        case .activationFailed(let outcome, let reason)?:
            result.outcome = "failed"
            result.reason = "activation failed (\(outcome.rawValue) \(outcome.name)): \(reason)"
        case .downloaded?, .downloading?, nil:
            result.outcome = "failed"
            result.reason = served?.endStatus.map { "the transfer ended with \(ZCLStatus.describe($0))" } ?? "the transfer did not finish"
        }
        return result
    }

    /// Carries frames between two emulated devices until neither has more to say: each frame is
    /// traced and shown to attached rigs as `emit` does, then handled by its receiver, whose replies
    /// join the queue. A loop rather than `emit`'s recursion, so a long transfer cannot exhaust
    /// the stack. Frames to anyone else go out through `emit`.
    func exchange(_ first: OutgoingZCL, between a: EUI64, and b: EUI64, limit: Int) {
        var queue = [first]
        var index = 0
        // What relaying needs from the engine's state, and the two devices, read once here (the
        // relay context again every `relayRefresh` frames) rather than under the lock for every
        // frame: with transfers running side by side (`updateFirmware`), the lock is the contended
        // resource. The OTA code takes only a device's ID and type from these copies, and checks
        // under the lock that the device is still there.
        var relay = relayContext()
        let devices = state.withLock { state in [a: state.devices[a], b: state.devices[b]] }
        while index < queue.count, index < limit {
            let outgoing = queue[index]
            index += 1
            guard outgoing.to == a || outgoing.to == b else {
                emit([outgoing])
                continue
            }
            if relay.age >= Self.relayRefresh { relay = relayContext() }
            relay.age += 1
            let bytes = outgoing.frame.encoded()
            self.relay(outgoing, bytes: bytes, context: relay)
            let handling = otaFastPath(outgoing, receiver: devices[outgoing.to] ?? nil)
                ?? handleZCL(deviceID: outgoing.to, source: outgoing.from, profile: ZCLProfileID.smartEnergy, cluster: outgoing.cluster, zcl: bytes)
            switch handling {
            case .now(let replies):
                queue += replies
            case .blocking(let work):
                queue += work()
                relay.age = Self.relayRefresh  // a durable step took a while: read the clock again
            }
        }
    }

    /// How many frames `exchange` relays on one reading of the clock, the frame sink and whether
    /// anyone subscribed to `han.frame` (a subscription or a clock change counts from the next reading).
    static let relayRefresh = 64

    struct RelayContext {
        var sink: (@Sendable (OutgoingZCL) -> Void)?
        var clock: VirtualClock
        var publishFrames: Bool
        var age = 0
    }

    private func relayContext() -> RelayContext {
        let (sink, clock) = state.withLock { ($0.frameSink, $0.clock) }
        return RelayContext(sink: sink, clock: clock, publishFrames: events.hasSubscribers(for: .hanFrame))
    }

    /// An OTA cluster command between the two devices of `exchange`, handed to the receiver's OTA
    /// code as the frame it already is: what `handleZCL` would do with its bytes (both a display
    /// and a hub serve the OTA cluster on the Smart Energy profile), without decoding again the
    /// frame just encoded. Nil for anything else, which takes the general path.
    private func otaFastPath(_ outgoing: OutgoingZCL, receiver: Device?) -> ZCLHandling? {
        guard outgoing.cluster == ZCLClusterID.otaUpgrade, outgoing.frame.header.frameType == .clusterSpecific,
              let receiver, Self.serves(receiver.type, cluster: ZCLClusterID.otaUpgrade) else { return nil }
        let (to, from, cluster) = (outgoing.to, outgoing.from, outgoing.cluster)
        return otaCommand(device: receiver, source: from, frame: outgoing.frame) { frames in
            frames.map { OutgoingZCL(from: to, to: from, cluster: cluster, frame: $0) }
        }
    }

    private func relay(_ outgoing: OutgoingZCL, bytes: [UInt8], context: RelayContext) {
        let time = context.clock.now(real: realNow())
        traces.record(outgoing.from, TracedFrame(time: time, direction: "out", peer: outgoing.to, cluster: outgoing.cluster, zcl: bytes))
        traces.record(outgoing.to, TracedFrame(time: time, direction: "in", peer: outgoing.from, cluster: outgoing.cluster, zcl: bytes))
        if context.publishFrames {
            for (device, direction, peer) in [(outgoing.from, "out", outgoing.to), (outgoing.to, "in", outgoing.from)] {
                var data = FrameNames.describe(cluster: outgoing.cluster, zcl: bytes)
                data["direction"] = .string(direction)
                data["peer"] = .string(peer.description)
                events.publish(.hanFrame, device: device, time: time, data: data, log: false)
            }
        }
        context.sink?(outgoing)
    }

    // MARK: activation

    /// Activate Firmware (CS06): switch `id` to the image it holds, now or at `time`.
    public func activateFirmware(_ id: EUI64, hash: String?, at time: Timestamp?) throws -> ActivationReport {
        _ = try requireDevice(id)
        return try serialized { state in
            let now = state.clock.now(real: realNow())
            if let time, time > now {
                guard let held = firmwareState(id).held else {
                    return ActivationReport(outcome: .noImageHeld, reason: "\(id) holds no downloaded image", device: state.devices[id])
                }
                if let hash, hash.lowercased() != held.hash {
                    return ActivationReport(outcome: .hashMismatch, reason: "\(id) holds image \(held.hash), not \(hash.lowercased())", device: state.devices[id])
                }
                try scheduleActivationLocked(id, hash: held.hash, at: time, state: &state, now: now)
                return ActivationReport(outcome: .success, reason: "activation scheduled for \(time.rfc3339)", device: state.devices[id], scheduledAt: time)
            }
            return try activateLocked(id, hash: hash?.lowercased(), state: &state, now: now)
        }
    }

    /// Switches `id` to its held image, under the engine's lock: the device's firmware version
    /// changes in the store and in memory, its inventory status follows the CPL, and the held image
    /// is released. `also` runs in the same transaction (a scheduled job deleting itself).
    func activateLocked(_ id: EUI64, hash: String?, state: inout State, now: Timestamp,
                        also: ((StoreTransaction) throws -> Void)? = nil) throws -> ActivationReport {
        func refuse(_ outcome: ActivationOutcome, _ reason: String) -> ActivationReport {
            if outcome == .activationFailure { firmwareStates.withLock { $0[id, default: DeviceFirmwareState()].last = .activationFailed(outcome, reason) } }
            events.publish(.firmwareActivationFailed, device: id, time: now,
                           data: ["outcome": .int(Int64(outcome.rawValue)), "name": .string(outcome.name), "reason": .string(reason)], level: .warning)
            return ActivationReport(outcome: outcome, reason: reason, device: state.devices[id])
        }
        guard var device = state.devices[id] else { return refuse(.activationFailure, "no device \(id)") }
        guard let held = firmwareState(id).held else { return refuse(.noImageHeld, "\(id) holds no downloaded image") }
        if let hash, hash != held.hash { return refuse(.hashMismatch, "\(id) holds image \(held.hash), not \(hash)") }
        guard let model = state.lab.models[device.modelKey] else { return refuse(.activationFailure, "no model \(device.modelKey)") }
        if model.type == .ppmid, model.isDualMode, let refusal = MP202.otaRefusal(mode: device.mode) {
            return refuse(.activationFailure, refusal)
        }
        let before = device
        device.firmwareVersion = held.fileVersion
        device.status = HANMembership.statusAfterFirmwareChange(device: device, model: model, cpl: state.lab.cpl, regime: state.lab.regime)
        let updated = device
        // The image must still be stored: checked in the transaction that activates (one
        // transaction, not a read and then a write; nothing is written when it is gone).
        let stored = try store.write { tx -> Bool in
            guard try tx.firmwareImageExists(hash: held.hash) else { return false }
            try tx.save(updated, origin: .api)
            try tx.deleteHeldFirmware(device: id)
            try also?(tx)
            return true
        }
        guard stored else { return refuse(.activationFailure, "the image \(held.hash) is no longer in the store") }
        state.devices[id] = updated
        var firmware = DeviceFirmwareState()
        firmware.serving = firmwareState(id).serving
        firmware.last = .activated(held.fileVersion)
        firmwareStates.withLock { $0[id] = firmware }
        let presented = state.lab.cpl.presentedFirmware(model: model, firmware: updated.firmwareVersion, mode: updated.mode, regime: state.lab.regime)
        events.publish(.firmwareActivated, device: id, time: now, data: [
            "hash": .string(held.hash), "from": .string(before.firmwareVersion.hex), "to": .string(updated.firmwareVersion.hex),
            "presentedFirmwareVersion": .string(presented.hex), "status": .string(updated.status.rawValue),
        ])
        if updated.status != before.status {
            events.publish(.deviceStatus, device: id, time: now, data: ["status": .string(updated.status.rawValue)])
        }
        return ActivationReport(outcome: .success, reason: "running \(updated.firmwareVersion.hex)", device: updated)
    }

    /// Schedules the activation of `id`'s held image as a durable job (replacing any earlier one),
    /// so that it fires once at `due` on the virtual clock, across restarts.
    func scheduleActivationLocked(_ id: EUI64, hash: String, at due: Timestamp, state: inout State, now: Timestamp) throws {
        let payload = String(decoding: try JSONEncoderShim.encode(PendingActivation(device: id.description, hash: hash)), as: UTF8.self)
        let (job, replaced) = try store.write { tx -> (ScheduledJob, [Int64]) in
            var replaced: [Int64] = []
            for job in try tx.allJobs() where job.kind == JobKind.firmwareActivation.rawValue {
                if let pending = try? JSONEncoderShim.decode(PendingActivation.self, from: Array(job.payload.utf8)), pending.device == id.description {
                    try tx.deleteJob(job.id)
                    replaced.append(job.id)
                }
            }
            try tx.updateHeldFirmware(device: id, status: .waitingToUpgrade, activateAt: due)
            return (try tx.insertJob(due: due, kind: JobKind.firmwareActivation.rawValue, payload: payload), replaced)
        }
        for old in replaced { state.schedule.remove(id: old) }
        state.schedule.insert(job)
        firmwareStates.withLock { states in
            var firmware = states[id] ?? DeviceFirmwareState()
            firmware.held?.status = .waitingToUpgrade
            firmware.held?.activateAt = due
            firmware.imageUpgradeStatus = ImageUpgradeStatus.waitingToUpgrade.rawValue
            firmware.last = .scheduled(due)
            states[id] = firmware
        }
        rearm(state)
        events.publish(.firmwareScheduled, device: id, time: now, data: ["hash": .string(hash), "activateAt": .string(due.rfc3339)])
    }

    /// A scheduled activation is due (under the engine's lock, from `run(job)`).
    func runFirmwareActivationJob(_ job: ScheduledJob, state: inout State, now: Timestamp) throws {
        guard let pending = try? JSONEncoderShim.decode(PendingActivation.self, from: Array(job.payload.utf8)), let id = EUI64(pending.device) else {
            try store.write { try $0.deleteJob(job.id) }
            return
        }
        let report = try activateLocked(id, hash: pending.hash, state: &state, now: now, also: { try $0.deleteJob(job.id) })
        if report.outcome != .success { try store.write { try $0.deleteJob(job.id) } }
    }

    // MARK: reads

    /// What `firmware.version` reports.
    public func firmwareStatus(_ id: EUI64) throws -> JSONValue {
        let device = try requireDevice(id)
        return state.withLock { state in firmwareStates.withLock { states in
            let model = state.lab.models[device.modelKey]
            let presented = model.map { state.lab.cpl.presentedFirmware(model: $0, firmware: device.firmwareVersion, mode: device.mode, regime: state.lab.regime) }
                ?? device.firmwareVersion
            let firmware = states[id] ?? DeviceFirmwareState()
            var object: [String: JSONValue] = [
                "device": .string(id.description), "firmwareVersion": .string(device.firmwareVersion.hex),
                "presentedFirmwareVersion": .string(presented.hex), "mode": .string(device.mode.name), "status": .string(device.status.rawValue),
                "imageUpgradeStatus": .int(Int64(firmware.imageUpgradeStatus)),
                "imageUpgradeStatusName": .string(ImageUpgradeStatus(rawValue: firmware.imageUpgradeStatus)?.name ?? "unknown"),
                "fileOffset": .int(Int64(firmware.fileOffset)),
            ]
            if let model {
                object["manufacturerCode"] = .string(model.manufacturer.code)
                object["imageType"] = .string(model.otaImageType)
            }
            object["held"] = firmware.held.map { held -> JSONValue in
                [
                    "hash": .string(held.hash), "fileVersion": .string(held.fileVersion.hex),
                    "status": .string(held.status.name), "activateAt": held.activateAt.map { .string($0.rfc3339) } ?? .null,
                ]
            } ?? .null
            object["download"] = firmware.download.map { download -> JSONValue in
                [
                    "server": .string(download.server.description), "fileVersion": .string(upperHex(download.image.fileVersion, width: 8)),
                    "fileOffset": .int(Int64(download.fileOffset)), "imageSize": .int(Int64(download.image.imageSize)),
                ]
            } ?? .null
            return .object(object)
        } }
    }
}

/// ECDSA P-256 over SHA-256 with a manufacturer's public key, for the firmware rules. Holds the
/// key's raw bytes (swift-crypto's key type is not Sendable).
struct P256Verifier: SignatureVerifier {
    let rawKey: [UInt8]
    init(key: P256.Signing.PublicKey) { rawKey = Array(key.rawRepresentation) }

    func isValidSignature(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        guard let key = try? P256.Signing.PublicKey(rawRepresentation: rawKey),
              let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
        return key.isValidSignature(parsed, for: message)
    }
}
