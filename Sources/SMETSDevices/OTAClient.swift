import SMETSCore
import SMETSWire

/// The OTA Upgrade client of one device (a PPMID or an IHD): the ZCL handshake with the server that
/// offers an image, the download, the image it then holds, and when that image is activated.
///
/// A value: ``receive(_:now:context:)`` takes one input and returns what the device does about it,
/// in order. The executor (the daemon) performs the actions and feeds back what only it can learn:
/// the verdict of the firmware rules on a downloaded file (which needs the model's signing key and
/// cryptography), a store commit that failed, an activation's outcome.
///
/// The executor's contract:
/// - Every ``Action/persist(_:)`` of one batch is committed in one transaction before any frame of
///   that batch is sent or event published. If the commit fails, none of the batch's other actions
///   are performed: the executor feeds ``Input/persistFailed(reason:)`` to the machine that returned
///   the batch and performs what that returns instead (the machine undoes its own change).
/// - Only an input whose ``Input/mayChangeStore`` is true can return a `.persist` or `.activate`:
///   a batch for an Image Block Response never does, so the executor runs those in place (a
///   download's bytes then grow without being copied).
public struct OTAClient: Sendable, Hashable {
    /// What the device knows about itself that the machine does not keep: its model and the
    /// firmware it runs. Passed with every input, since a device can change under the machine
    /// (an activation, an edit through the control API).
    public struct Context: Sendable, Hashable {
        /// Whether the device's model serves the OTA Upgrade cluster at all. Without it every
        /// command is answered as by a device without the cluster (UNSUPPORTED_CLUSTER).
        public var hasOTA: Bool
        public var manufacturerCode: UInt16
        public var imageType: UInt16
        public var hardwareVersion: UInt16?
        /// The firmware the device runs (han-link.md rev 1.1: never the CPL's presented value):
        /// the CurrentFileVersion of its queries and attribute.
        public var runningFirmware: FirmwareVersion
        /// The largest block the model asks for (`maxImageBlockBytes`).
        public var maxImageBlockBytes: Int
        /// The largest image the device takes (`maxImageBytes` of the settings).
        public var maxImageBytes: Int
        /// The UpgradeServerID attribute: the hub the device joined, if any.
        public var upgradeServer: EUI64?

        public init(hasOTA: Bool = true, manufacturerCode: UInt16, imageType: UInt16, hardwareVersion: UInt16?,
                    runningFirmware: FirmwareVersion, maxImageBlockBytes: Int, maxImageBytes: Int, upgradeServer: EUI64? = nil) {
            self.hasOTA = hasOTA; self.manufacturerCode = manufacturerCode; self.imageType = imageType
            self.hardwareVersion = hardwareVersion; self.runningFirmware = runningFirmware
            self.maxImageBlockBytes = maxImageBlockBytes; self.maxImageBytes = maxImageBytes; self.upgradeServer = upgradeServer
        }

        /// The context of a device of `model` that runs `runningFirmware`.
        public init(model: DeviceModel, runningFirmware: FirmwareVersion, maxImageBytes: Int, upgradeServer: EUI64? = nil) {
            self.init(manufacturerCode: model.manufacturer.numericCode, imageType: model.numericImageType, hardwareVersion: model.hardwareVersion,
                      runningFirmware: runningFirmware, maxImageBlockBytes: model.maxImageBlockBytes, maxImageBytes: maxImageBytes,
                      upgradeServer: upgradeServer)
        }
    }

    /// The OTA server's commands, as a client receives them.
    public enum ServerCommand: Sendable, Hashable {
        case imageNotify(ImageNotify)
        case queryNextImageResponse(QueryNextImageResponse)
        case imageBlockResponse(ImageBlockResponse)
        case upgradeEndResponse(UpgradeEndResponse)
    }

    /// The client's commands to its server. Each goes out as a new ZCL transaction.
    public enum ClientCommand: Sendable, Hashable {
        case queryNextImageRequest(QueryNextImageRequest)
        case imageBlockRequest(ImageBlockRequest)
        case upgradeEndRequest(UpgradeEndRequest)
    }

    /// The executor's check of a downloaded file against the firmware rules.
    public enum Verdict: Sendable, Hashable {
        /// Every rule passed: `image` is the parsed file, `hash` the SHA-256 of its Manufacturer Image.
        case accepted(OTAImage, hash: String)
        case rejected(FirmwareVerdict)
    }

    public enum Input: Sendable, Hashable {
        /// A command of the OTA Upgrade cluster from `server`.
        case command(ServerCommand, from: EUI64)
        /// The answer to the last ``Action/verify(file:server:image:)``.
        case verdict(Verdict)
        /// The store could not commit the `.persist` actions of the batch just returned.
        case persistFailed(reason: String)
        /// Activate Firmware (DUIS CS06) through the control API: the held image (checked against
        /// `hash` when given), now or at `time`.
        case activationRequested(hash: String?, at: Timestamp?)
        /// A scheduled activation of the image `hash` is due.
        case activationDue(hash: String)
        /// The executor switched the device to the held image, which now runs as `version`.
        case activated(FirmwareVersion)
        /// The executor could not switch the device to the held image.
        case activationFailed(ActivationOutcome, reason: String)

        /// Whether this input's batch can hold a ``Action/persist(_:)`` or ``Action/activate(hash:)``:
        /// such an input runs in the executor's writer turn; any other may run in place, at once.
        public var mayChangeStore: Bool {
            switch self {
            case .command(.upgradeEndResponse, _), .verdict, .activationRequested, .activationDue: true
            case .command, .persistFailed, .activated, .activationFailed: false
            }
        }
    }

    /// A durable change, committed before the frames of the same batch go out.
    public enum FirmwareChange: Sendable, Hashable {
        /// Keep `image` for the device: its Manufacturer Image once in the image store (by
        /// `held.hash`), and the device's held record with the header and signature it came with.
        case hold(HeldFirmware, image: OTAImage)
        /// The held image's status and activation time change.
        case holdStatus(ImageUpgradeStatus, activateAt: Timestamp?)
        /// A durable job activates the image `hash` at `at`, replacing any earlier one of the device.
        case scheduleActivation(hash: String, at: Timestamp)
        /// The device's scheduled activation, if any, is dropped.
        case cancelActivation
    }

    /// What happened, for events and the log.
    public enum Event: Sendable, Hashable {
        case notified(server: EUI64, fileVersion: UInt32?, accepted: Bool)
        case noImage(server: EUI64, status: UInt8)
        case downloadStarted(server: EUI64, image: OfferedImage, resumedFrom: UInt32)
        /// Once per whole percent of the image received.
        case progress(server: EUI64, fileOffset: UInt32, imageSize: UInt32)
        case waitForData(server: EUI64, currentTime: UInt32, requestTime: UInt32)
        case aborted(server: EUI64, reason: String)
        /// The offered image is over the size limit or empty: refused before any block.
        case refused(server: EUI64, image: OfferedImage, reason: String)
        case rejected(server: EUI64, fileVersion: UInt32, verdict: FirmwareVerdict)
        case downloaded(server: EUI64, held: HeldFirmware, imageSize: UInt32)
        case scheduled(hash: String, at: Timestamp)
        case waiting(hash: String, fileVersion: FirmwareVersion)
        case ignored(server: EUI64, reason: String)
        case activationFailed(ActivationOutcome, reason: String)
        /// A durable change could not be committed (the executor logs the error itself).
        case storeFailed(reason: String)
    }

    public enum Action: Sendable, Hashable {
        /// A new transaction to `server`, with sequence number `sequence`.
        case send(ClientCommand, to: EUI64, sequence: UInt8)
        /// A Default Response to the command just received, with `status` (the executor leaves a
        /// SUCCESS out when the command disabled it).
        case respond(ZCLStatus)
        /// Check the whole downloaded `file` against the firmware rules, then feed the verdict back.
        case verify(file: [UInt8], server: EUI64, image: OfferedImage)
        case persist(FirmwareChange)
        /// Switch the device to the held image `hash` (the executor checks that it is still stored
        /// and that the device may take it), then feed back `.activated` or `.activationFailed`.
        case activate(hash: String)
        case event(Event)
    }

    /// Where the download is.
    public enum Phase: Sendable, Hashable {
        case idle
        case downloading(FirmwareDownload)
        /// Complete; the verdict on the file is awaited.
        case verifying(FirmwareDownload)
    }

    /// The last step of the handshake, for `firmware.update` to report.
    public enum Step: Sendable, Hashable {
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

    /// What a failed commit undoes.
    enum Uncommitted: Sendable, Hashable {
        /// A verified image that was to be held, in place of `previous`.
        case hold(previous: HeldFirmware?, previousDownloadedVersion: UInt32?, server: EUI64, image: OfferedImage)
        /// A change of the held image's status or schedule.
        case holdStatus(previous: HeldFirmware, previousStep: Step?)
    }

    public private(set) var phase: Phase = .idle
    /// The verified image the device holds until it activates it (also in the store).
    public private(set) var held: HeldFirmware?
    /// The last step of the handshake; cleared by ``forgetLastStep()``.
    public private(set) var lastStep: Step?
    /// The sequence number of the client's last transaction.
    public private(set) var sequence: UInt8 = 0
    /// The FileOffset once no download runs: the size of the last complete one, else 0.
    private var settledFileOffset: UInt32 = 0
    private var downloadedVersion: UInt32?
    private var reportedPercent = -1
    private var uncommitted: Uncommitted?

    /// A device that holds nothing and downloads nothing.
    public init() {}

    /// A device as the store left it: holding `held`, if anything.
    public init(restoring held: HeldFirmware?) {
        self.held = held
        downloadedVersion = held?.fileVersion.rawValue
    }

    // MARK: attributes

    /// ZCL FileOffset (0x0001): where the next block starts.
    public var fileOffset: UInt32 {
        switch phase {
        case .downloading(let download), .verifying(let download): download.fileOffset
        case .idle: settledFileOffset
        }
    }

    /// ZCL DownloadedFileVersion (0x0004): nil reads as 0xFFFFFFFF.
    public var downloadedFileVersion: UInt32? { downloadedVersion }

    /// ZCL ImageUpgradeStatus (0x0006).
    public var imageUpgradeStatus: ImageUpgradeStatus {
        switch phase {
        case .downloading, .verifying: .downloading
        case .idle: held?.status ?? .normal
        }
    }

    /// The download in progress or awaiting its verdict.
    public var download: FirmwareDownload? {
        switch phase {
        case .downloading(let download), .verifying(let download): download
        case .idle: nil
        }
    }

    /// The value of an OTA Upgrade client attribute, nil for one the device lacks.
    public func attribute(_ id: UInt16, context: Context) -> ZCLValue? {
        guard context.hasOTA else { return nil }
        switch id {
        case OTAAttribute.upgradeServerID: return .ieeeAddress(context.upgradeServer ?? EUI64(UInt64.max))
        case OTAAttribute.fileOffset: return .uint32(fileOffset)
        case OTAAttribute.currentFileVersion: return .uint32(context.runningFirmware.rawValue)
        case OTAAttribute.downloadedFileVersion: return .uint32(downloadedVersion ?? 0xFFFF_FFFF)
        case OTAAttribute.imageUpgradeStatus: return .enum8(imageUpgradeStatus.rawValue)
        case OTAAttribute.manufacturerID: return .uint16(context.manufacturerCode)
        case OTAAttribute.imageTypeID: return .uint16(context.imageType)
        default: return nil
        }
    }

    /// Forgets the last step, before a new transfer whose outcome is to be reported.
    public mutating func forgetLastStep() { lastStep = nil }

    // MARK: the machine

    /// Takes one input at `now` (the virtual clock) and returns the actions, in order.
    public mutating func receive(_ input: Input, now: Timestamp, context: Context) -> [Action] {
        let undo = uncommitted
        uncommitted = nil
        guard context.hasOTA else {
            if case .command = input { return [.respond(.unsupportedCluster)] }
            return []
        }
        switch input {
        case let .command(.imageNotify(notify), server):
            return imageNotify(notify, from: server, context: context)
        case let .command(.queryNextImageResponse(response), server):
            return queryResponse(response, from: server, context: context)
        case let .command(.imageBlockResponse(response), server):
            return blockResponse(response, from: server, context: context)
        case let .command(.upgradeEndResponse(response), server):
            return upgradeEndResponse(response, from: server, now: now)
        case .verdict(let verdict):
            return self.verdict(verdict)
        case .persistFailed(let reason):
            return persistFailed(undo, reason: reason)
        case let .activationRequested(hash, time):
            return activationRequested(hash: hash, at: time, now: now)
        case .activationDue(let hash):
            return activationDue(hash: hash)
        case .activated(let version):
            phase = .idle
            held = nil
            downloadedVersion = nil
            settledFileOffset = 0
            reportedPercent = -1
            lastStep = .activated(version)
            return []
        case let .activationFailed(outcome, reason):
            if outcome == .activationFailure { lastStep = .activationFailed(outcome, reason) }
            return [.event(.activationFailed(outcome, reason: reason))]
        }
    }

    /// Image Notify: query the notifier, unless the notice names another manufacturer or image type.
    private mutating func imageNotify(_ notify: ImageNotify, from server: EUI64, context: Context) -> [Action] {
        let otherManufacturer = notify.manufacturerCode.map { $0 != 0xFFFF && $0 != context.manufacturerCode } ?? false
        let otherType = notify.imageType.map { $0 != 0xFFFF && $0 != context.imageType } ?? false
        let accepted = !otherManufacturer && !otherType
        let event = Action.event(.notified(server: server, fileVersion: notify.newFileVersion, accepted: accepted))
        guard accepted else { return [event] }
        let query = QueryNextImageRequest(manufacturerCode: context.manufacturerCode, imageType: context.imageType,
                                          currentFileVersion: context.runningFirmware.rawValue, hardwareVersion: context.hardwareVersion)
        return [event, .send(.queryNextImageRequest(query), to: server, sequence: nextSequence())]
    }

    /// Query Next Image Response: start (or resume) the download, or note that there is none.
    private mutating func queryResponse(_ response: QueryNextImageResponse, from server: EUI64, context: Context) -> [Action] {
        guard case let .success(code, type, version, size) = response else {
            lastStep = .noImage(response.statusCode)
            return [.event(.noImage(server: server, status: response.statusCode))]
        }
        let offered = OfferedImage(manufacturerCode: code, imageType: type, fileVersion: version, imageSize: size)
        if size == 0 || Int(size) > context.maxImageBytes {
            let reason = size == 0
                ? "the offered image is empty"
                : "the offered image is \(size) bytes; the limit is \(context.maxImageBytes) (maxImageBytes)"
            lastStep = .aborted(reason)
            return [
                .event(.refused(server: server, image: offered, reason: reason)),
                .send(.upgradeEndRequest(Self.upgradeEnd(.invalidImage, offered)), to: server, sequence: 0),
            ]
        }
        // The same server offering the same image again: go on from FileOffset.
        var download = FirmwareDownload(server: server, image: offered)
        if case .downloading(let current) = phase, current.server == server, current.image == offered { download = current }
        phase = .downloading(download)
        lastStep = .downloading
        reportedPercent = -1
        return [
            .event(.downloadStarted(server: server, image: offered, resumedFrom: download.fileOffset)),
            .send(.imageBlockRequest(blockRequest(download, context: context)), to: server, sequence: nextSequence()),
        ]
    }

    /// Image Block Response: keep the block and ask for the next, finish, wait, or give up.
    private mutating func blockResponse(_ response: ImageBlockResponse, from server: EUI64, context: Context) -> [Action] {
        switch response {
        case let .success(code, type, version, offset, data):
            guard case .downloading(var download) = phase, download.server == server else { return [] }
            // Let go of the phase's reference to the bytes so far, so that the block is appended in
            // place rather than into a copy of the whole file so far (quadratic over a transfer).
            phase = .idle
            switch download.accept(manufacturerCode: code, imageType: type, fileVersion: version, fileOffset: offset, data: data) {
            case .invalid(let reason):
                return abort(server: server, image: download.image, reason: reason)
            case .accepted(complete: true):
                var actions = progress(download)
                phase = .verifying(download)
                actions.append(.verify(file: download.received, server: server, image: download.image))
                return actions
            case .accepted(complete: false), .ignored:
                // A block other than the one asked for (another offset or image) is dropped, and the
                // right one asked for again.
                phase = .downloading(download)
                return progress(download)
                    + [.send(.imageBlockRequest(blockRequest(download, context: context)), to: server, sequence: nextSequence())]
            }
        case let .waitForData(currentTime, requestTime, _):
            // With no delay, ask again at once; otherwise the download stays at its FileOffset and
            // resumes at the server's next Image Notify.
            var actions: [Action] = [.event(.waitForData(server: server, currentTime: currentTime, requestTime: requestTime))]
            if requestTime <= currentTime, case .downloading(let download) = phase, download.server == server {
                actions.append(.send(.imageBlockRequest(blockRequest(download, context: context)), to: server, sequence: nextSequence()))
            }
            return actions
        case .failure(let status):
            guard case .downloading(let download) = phase, download.server == server else { return [] }
            let reason = "the server answered Image Block Request with \(ZCLStatus.describe(status))"
            reset(.aborted(reason))
            return [.event(.aborted(server: server, reason: reason))]
        }
    }

    /// The verdict on a complete download: hold a passing image and tell the server SUCCESS, or
    /// drop the file and tell it INVALID_IMAGE.
    private mutating func verdict(_ verdict: Verdict) -> [Action] {
        guard case .verifying(let download) = phase else { return [] }
        let (server, offered) = (download.server, download.image)
        switch verdict {
        case .rejected(let rules):
            reset(.rejected(rules))
            return [
                .event(.rejected(server: server, fileVersion: offered.fileVersion, verdict: rules)),
                .send(.upgradeEndRequest(Self.upgradeEnd(.invalidImage, offered)), to: server, sequence: 0),
            ]
        case let .accepted(image, hash):
            let header = image.header
            let new = HeldFirmware(hash: hash, fileVersion: FirmwareVersion(header.fileVersion), manufacturerCode: header.manufacturerCode,
                                   imageType: header.imageType, status: .downloadComplete, server: server)
            var actions: [Action] = []
            // An earlier held image's scheduled activation must not switch the device to this one.
            if held?.activateAt != nil { actions.append(.persist(.cancelActivation)) }
            actions.append(.persist(.hold(new, image: image)))
            uncommitted = .hold(previous: held, previousDownloadedVersion: downloadedVersion, server: server, image: offered)
            phase = .idle
            held = new
            settledFileOffset = offered.imageSize
            downloadedVersion = header.fileVersion
            lastStep = .downloaded(hash: hash)
            actions.append(.event(.downloaded(server: server, held: new, imageSize: offered.imageSize)))
            actions.append(.send(.upgradeEndRequest(Self.upgradeEnd(.success, offered)), to: server, sequence: 0))
            return actions
        }
    }

    /// Upgrade End Response: activate now, at a time on the virtual clock, or wait for a command.
    private mutating func upgradeEndResponse(_ response: UpgradeEndResponse, from server: EUI64, now: Timestamp) -> [Action] {
        guard let current = held, [.downloadComplete, .waitingToUpgrade].contains(current.status), Self.names(response, current) else {
            return [.event(.ignored(server: server, reason: "Upgrade End Response for an image the device does not hold")), .respond(.success)]
        }
        switch UpgradeSchedule.decide(currentTime: response.currentTime, upgradeTime: response.upgradeTime, now: now) {
        case .now:
            return activateNow(current) + [.respond(.success)]
        case .at(let due):
            return schedule(current, at: due) + [.respond(.success)]
        case .waitForCommand:
            var actions: [Action] = [.persist(.holdStatus(.waitingToUpgrade, activateAt: nil))]
            if current.activateAt != nil { actions.append(.persist(.cancelActivation)) }
            uncommitted = .holdStatus(previous: current, previousStep: lastStep)
            held?.status = .waitingToUpgrade
            held?.activateAt = nil
            lastStep = .waiting
            return actions + [.event(.waiting(hash: current.hash, fileVersion: current.fileVersion)), .respond(.success)]
        }
    }

    /// Activate Firmware (CS06): the held image, now or at `time`.
    private mutating func activationRequested(hash: String?, at time: Timestamp?, now: Timestamp) -> [Action] {
        guard let current = held else {
            return [.event(.activationFailed(.noImageHeld, reason: "the device holds no downloaded image"))]
        }
        if let hash, hash.lowercased() != current.hash {
            return [.event(.activationFailed(.hashMismatch, reason: "the device holds image \(current.hash), not \(hash.lowercased())"))]
        }
        if let time, time > now { return schedule(current, at: time) }
        return activateNow(current)
    }

    /// A scheduled activation is due: the image it names, if the device still holds it.
    private mutating func activationDue(hash: String) -> [Action] {
        guard let current = held else {
            return [.event(.activationFailed(.noImageHeld, reason: "the device holds no downloaded image"))]
        }
        guard current.hash == hash else {
            return [.event(.activationFailed(.hashMismatch, reason: "the device holds image \(current.hash), not \(hash)"))]
        }
        return [.activate(hash: hash)]
    }

    private mutating func activateNow(_ current: HeldFirmware) -> [Action] {
        guard current.activateAt != nil else { return [.activate(hash: current.hash)] }
        // The earlier schedule goes first; if that cannot be stored, nothing is activated.
        uncommitted = .holdStatus(previous: current, previousStep: lastStep)
        return [.persist(.cancelActivation), .activate(hash: current.hash)]
    }

    private mutating func schedule(_ current: HeldFirmware, at due: Timestamp) -> [Action] {
        uncommitted = .holdStatus(previous: current, previousStep: lastStep)
        held?.status = .waitingToUpgrade
        held?.activateAt = due
        lastStep = .scheduled(due)
        return [
            .persist(.holdStatus(.waitingToUpgrade, activateAt: due)),
            .persist(.scheduleActivation(hash: current.hash, at: due)),
            .event(.scheduled(hash: current.hash, at: due)),
        ]
    }

    /// Undoes the change whose commit failed, and says so as the device would.
    private mutating func persistFailed(_ undo: Uncommitted?, reason: String) -> [Action] {
        switch undo {
        case nil:
            return []
        case let .hold(previous, previousVersion, server, image):
            held = previous
            downloadedVersion = previousVersion
            let why = "the image could not be stored: \(reason)"
            reset(.aborted(why))
            return [
                .event(.storeFailed(reason: reason)),
                .event(.aborted(server: server, reason: why)),
                .send(.upgradeEndRequest(Self.upgradeEnd(.abort, image)), to: server, sequence: 0),
            ]
        case let .holdStatus(previous, previousStep):
            held = previous
            lastStep = previousStep
            // The server may send its Upgrade End Response again.
            return [.event(.storeFailed(reason: reason)), .respond(.failure)]
        }
    }

    // MARK: helpers

    private mutating func nextSequence() -> UInt8 {
        sequence &+= 1
        return sequence
    }

    /// Ends the download without an image: FileOffset 0, the status of what is held.
    private mutating func reset(_ step: Step) {
        phase = .idle
        settledFileOffset = 0
        lastStep = step
    }

    private mutating func abort(server: EUI64, image: OfferedImage, reason: String) -> [Action] {
        reset(.aborted(reason))
        return [
            .event(.aborted(server: server, reason: reason)),
            .send(.upgradeEndRequest(Self.upgradeEnd(.invalidImage, image)), to: server, sequence: 0),
        ]
    }

    private mutating func progress(_ download: FirmwareDownload) -> [Action] {
        let size = download.image.imageSize
        let percent = Int(UInt64(download.fileOffset) * 100 / UInt64(max(1, size)))
        guard percent != reportedPercent else { return [] }
        reportedPercent = percent
        return [.event(.progress(server: download.server, fileOffset: download.fileOffset, imageSize: size))]
    }

    private func blockRequest(_ download: FirmwareDownload, context: Context) -> ImageBlockRequest {
        let image = download.image
        return ImageBlockRequest(manufacturerCode: image.manufacturerCode, imageType: image.imageType, fileVersion: image.fileVersion,
                                 fileOffset: download.fileOffset, maximumDataSize: download.nextBlockSize(maxImageBlockBytes: context.maxImageBlockBytes))
    }

    private static func upgradeEnd(_ status: ZCLStatus, _ image: OfferedImage) -> UpgradeEndRequest {
        UpgradeEndRequest(status: status, manufacturerCode: image.manufacturerCode, imageType: image.imageType, fileVersion: image.fileVersion)
    }

    /// Whether an Upgrade End Response names `held` (0xFFFF and 0xFFFFFFFF are wildcards).
    private static func names(_ response: UpgradeEndResponse, _ held: HeldFirmware) -> Bool {
        (response.manufacturerCode == held.manufacturerCode || response.manufacturerCode == 0xFFFF)
            && (response.imageType == held.imageType || response.imageType == 0xFFFF)
            && (response.fileVersion == held.fileVersion.rawValue || response.fileVersion == 0xFFFF_FFFF)
    }
}
