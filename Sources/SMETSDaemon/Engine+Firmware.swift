import Crypto
import Dispatch
import Foundation
import SMETSCore
import SMETSDCC
import SMETSDevices
import SMETSStore
import SMETSWire
import Synchronization

/// A device's OTA state: its OTA Upgrade client (a PPMID's or IHD's download, held image and
/// schedule) and, for a Communications Hub, its OTA server (the images it offers its clients).
/// The machines decide; the engine below carries out what they return.
public struct DeviceFirmwareState: Sendable, Hashable {
    var client = OTAClient()
    var server = OTAServer()

    /// ZCL FileOffset.
    public var fileOffset: UInt32 { client.fileOffset }
    /// ZCL DownloadedFileVersion; nil reads as 0xFFFFFFFF.
    public var downloadedFileVersion: UInt32? { client.downloadedFileVersion }
    /// ZCL ImageUpgradeStatus: 0 normal, 1 downloading, 2 download complete, 3 waiting to upgrade.
    public var imageUpgradeStatus: UInt8 { client.imageUpgradeStatus.rawValue }
}

/// When a served image is to be activated: what the hub's Upgrade End Response says.
public typealias FirmwareActivationTime = OTAServer.ActivationTime

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
    /// What to publish once the writer's turn that activated is over (the new state then visible).
    var announcements: [Announcement] = []
}

/// An event decided inside a writer's turn, published after it.
struct Announcement: Sendable {
    var type: EventType
    var device: EUI64
    var time: Timestamp
    var data: [String: EventValue]
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
    /// The image reached the device and passed its checks, but activating it failed.
    public var activationFailed = false

    /// The outcome from the device's last OTA step once the hub's transfer of `offered` is over.
    mutating func describe(_ last: OTAClient.Step?, offered: FirmwareVersion, endStatus: UInt8?) {
        switch last {
        case .activated(let version)? where version != offered:
            // A scheduled activation of an image the device held before fell due during the
            // transfer: the device restarted on that image and dropped the download (found by
            // scripts/crash-campaign, which read "activated" as the offered version running).
            outcome = "aborted"
            reason = "the device activated \(version.hex), an image it held before, during the transfer; it did not take \(offered.hex)"
        case .activated(let version)?:
            outcome = "activated"
            reason = "running \(version.hex)"
        case .scheduled(let due)?:
            outcome = "scheduled"
            activateAt = due
            reason = "activation at \(due.rfc3339)"
        case .waiting?:
            outcome = "waiting"
            reason = "holding the image until firmware.activate"
        case .rejected(let verdict)?:
            outcome = "rejected"
            reason = verdict.summary
            checks = verdict.checks
        case .aborted(let why)?:
            outcome = "aborted"
            reason = why
        case .noImage(let status)?:
            outcome = "aborted"
            reason = "the hub answered the query with \(ZCLStatus.describe(status))"
        case .activationFailed(let failure, let why)?:
            outcome = "failed"
            activationFailed = true
            reason = "activation failed (\(failure.rawValue) \(failure.name)): \(why)"
        case .downloaded?, .downloading?, nil:
            outcome = "failed"
            reason = endStatus.map { "the transfer ended with \(ZCLStatus.describe($0))" } ?? "the transfer did not finish"
        }
    }
}

extension Engine {
    func firmwareState(_ id: EUI64) -> DeviceFirmwareState { firmwareStates.withLock { $0[id] ?? DeviceFirmwareState() } }

    /// The held images of the store, as OTA client state: read once when the engine starts.
    static func restoredFirmware(_ store: StateStore) throws -> [EUI64: DeviceFirmwareState] {
        try store.read { try $0.allHeldFirmware() }.mapValues { held in
            var state = DeviceFirmwareState()
            state.client = OTAClient(restoring: held)
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
        if device.type.isDisplay && frame.header.direction == .serverToClient {
            let command: OTAClient.ServerCommand
            switch frame.header.commandID {
            case OTACommandID.imageNotify:
                guard let notify = try? frame.decodePayload(as: ImageNotify.self) else { return malformed }
                command = .imageNotify(notify)
            case OTACommandID.queryNextImageResponse:
                guard let response = try? frame.decodePayload(as: QueryNextImageResponse.self) else { return malformed }
                command = .queryNextImageResponse(response)
            case OTACommandID.imageBlockResponse:
                guard let response = try? frame.decodePayload(as: ImageBlockResponse.self) else { return malformed }
                command = .imageBlockResponse(response)
            case OTACommandID.upgradeEndResponse:
                guard let response = try? frame.decodePayload(as: UpgradeEndResponse.self) else { return malformed }
                command = .upgradeEndResponse(response)
            default:
                return nil
            }
            return clientCommand(device.id, command, from: source, frame: frame, reply: reply)
        }
        if device.type == .chf && frame.header.direction == .clientToServer {
            let command: OTAServer.ClientCommand
            switch frame.header.commandID {
            case OTACommandID.queryNextImageRequest:
                guard let request = try? frame.decodePayload(as: QueryNextImageRequest.self) else { return malformed }
                command = .queryNextImageRequest(request)
            case OTACommandID.imageBlockRequest:
                guard let request = try? frame.decodePayload(as: ImageBlockRequest.self) else { return malformed }
                command = .imageBlockRequest(request)
            case OTACommandID.upgradeEndRequest:
                guard let request = try? frame.decodePayload(as: UpgradeEndRequest.self) else { return malformed }
                command = .upgradeEndRequest(request)
            default:
                return nil
            }
            return .now(reply(serverCommand(hub: device.id, command, from: source, frame: frame)))
        }
        return nil
    }

    private func respond<C: ZCLClusterCommand>(to frame: ZCLFrame, with command: C) -> ZCLFrame {
        ZCLFrame(command, sequenceNumber: frame.header.sequenceNumber, disableDefaultResponse: true)
    }

    // MARK: the device as OTA client

    /// What `id`'s OTA client needs to know about the device, from `state`; nil when it is gone.
    func clientContext(_ id: EUI64, in state: State) -> OTAClient.Context? {
        guard let device = state.devices[id], let model = state.lab.models[device.modelKey] else { return nil }
        var context = OTAClient.Context(model: model, runningFirmware: device.firmwareVersion,
                                        maxImageBytes: state.lab.settings.maxImageBytes, upgradeServer: device.hub)
        context.hasOTA = model.hasOTA
        return context
    }

    /// A command from the device's OTA server. Most run in place under the OTA lock, at once: a
    /// block appended there grows the download without copying it. One that may change the store
    /// (an Upgrade End Response), and the check of a complete download, run on the blocking pool.
    private func clientCommand(_ id: EUI64, _ command: OTAClient.ServerCommand, from server: EUI64, frame: ZCLFrame,
                               reply: @escaping @Sendable ([ZCLFrame]) -> [OutgoingZCL]) -> ZCLHandling {
        let input = OTAClient.Input.command(command, from: server)
        if input.mayChangeStore {
            return .blocking { [self] in reply(self.clientDurably(id, input, answering: frame)) }
        }
        guard let (context, now) = state.read({ state in clientContext(id, in: state).map { ($0, state.clock.now(real: realNow())) } }) else {
            return .now([])
        }
        let actions = firmwareStates.withLock { $0[id, default: DeviceFirmwareState()].client.receive(input, now: now, context: context) }
        if actions.contains(where: { if case .verify = $0 { true } else { false } }) {
            return .blocking { [self] in reply(self.carryOut(id, actions, answering: frame)) }
        }
        return .now(reply(carryOut(id, actions, answering: frame)))
    }

    /// Performs a client batch whose durable changes (if any) are committed: frames out, events
    /// published, a complete download checked. Returns the frames, to the server that sent `frame`.
    private func carryOut(_ id: EUI64, _ actions: [OTAClient.Action], answering frame: ZCLFrame?) -> [ZCLFrame] {
        var frames: [ZCLFrame] = []
        var time: Timestamp?
        for action in actions {
            switch action {
            case let .send(command, _, sequence):
                frames.append(Self.clientFrame(command, sequence: sequence))
            case .respond(let status):
                if let frame { frames += Self.defaultResponse(to: frame, status: status) }
            case .event(let event):
                if time == nil { time = now() }
                publish(event, device: id, time: time ?? Timestamp(unixMillis: 0))
            case let .verify(file, _, _):
                frames += verify(id, file: file)
            case .persist, .activate:
                // Consumed by the writer's turn that ran the batch (`clientTurn`).
                break
            }
        }
        return frames
    }

    /// A new transaction of the device's OTA client.
    private static func clientFrame(_ command: OTAClient.ClientCommand, sequence: UInt8) -> ZCLFrame {
        switch command {
        case .queryNextImageRequest(let request): ZCLFrame(request, sequenceNumber: sequence, disableDefaultResponse: true)
        case .imageBlockRequest(let request): ZCLFrame(request, sequenceNumber: sequence, disableDefaultResponse: true)
        case .upgradeEndRequest(let request): ZCLFrame(request, sequenceNumber: sequence, disableDefaultResponse: true)
        }
    }

    /// The whole file is in: checks it against the firmware rules (outside every lock: a signature
    /// check is slow), then hands the verdict to the client, which keeps a passing image.
    private func verify(_ id: EUI64, file: [UInt8]) -> [ZCLFrame] {
        guard let (device, model, lab) = state.read({ state -> (Device, DeviceModel, LabSnapshot)? in
            guard let device = state.devices[id], let model = state.lab.models[device.modelKey] else { return nil }
            return (device, model, state.lab)
        }) else { return [] }
        let (verdict, image) = Self.check(file: file, device: device, model: model, lab: lab)
        let input: OTAClient.Input = if let image, verdict.accepted {
            .verdict(.accepted(image, hash: Self.imageHash(image.manufacturerImage)))
        } else {
            .verdict(.rejected(verdict))
        }
        return clientDurably(id, input, answering: nil)
    }

    /// Runs an input that may change the store in a writer's turn (`clientTurn`), then performs
    /// the rest of the batch. A failed commit is the client's to answer (it sends ABORT or FAILURE).
    private func clientDurably(_ id: EUI64, _ input: OTAClient.Input, answering frame: ZCLFrame?) -> [ZCLFrame] {
        do {
            let turn = try serialized { state in try clientTurn(id, input, state: &state, now: state.clock.now(real: realNow()), onStoreFailure: .answer) }
            announce(turn.activation)
            return carryOut(id, turn.actions, answering: frame)
        } catch {
            // Not a commit (those the client answers): the turn itself could not run.
            logger.error("the OTA client could not act", metadata: ["event": "firmware.storeFailed", "device_id": .string(id.description), "error": .string("\(error)")])
            return frame.map { Self.defaultResponse(to: $0, status: .failure) } ?? []
        }
    }

    /// What a writer's turn of the client did.
    struct ClientTurn {
        /// The batch's actions still to perform after the turn (frames, events, a check).
        var actions: [OTAClient.Action]
        /// The activation the batch asked for, if any.
        var activation: ActivationReport?
    }

    enum StoreFailurePolicy {
        /// The device answers (a HAN command): the client undoes its change and says so.
        case answer
        /// The caller answers (the control API, a job that is retried): the error is thrown and nothing changes.
        case rethrow
    }

    /// Runs `input` through `id`'s client inside a writer's turn: commits the batch's durable
    /// changes in one transaction, activates when told, and only then swaps the client's new state
    /// in where readers find it. `also` joins an activation's transaction (a job deleting itself).
    func clientTurn(_ id: EUI64, _ input: OTAClient.Input, state: inout State, now: Timestamp, onStoreFailure: StoreFailurePolicy,
                    also: ((StoreTransaction) throws -> Void)? = nil) throws -> ClientTurn {
        guard let context = clientContext(id, in: state) else { return ClientTurn(actions: []) }
        // A copy: frames of one device arrive one at a time, so nothing changes the stored client
        // during the turn (an input on the event loop meanwhile would be overwritten).
        var client = firmwareStates.withLock { $0[id]?.client } ?? OTAClient()
        var actions = client.receive(input, now: now, context: context)
        let changes = actions.compactMap { if case .persist(let change) = $0 { change } else { nil } }
        if !changes.isEmpty {
            do {
                try commit(changes, device: id, state: &state, now: now)
            } catch {
                if case .rethrow = onStoreFailure { throw error }
                actions = client.receive(.persistFailed(reason: "\(error)"), now: now, context: context)
            }
        }
        var activation: ActivationReport?
        var activationNotStored = false
        var rest: [OTAClient.Action] = []
        for action in actions {
            switch action {
            case .activate(let hash):
                let report: ActivationReport
                do {
                    report = try activateLocked(id, hash: hash, held: client.held, state: &state, now: now, also: also)
                } catch {
                    if case .rethrow = onStoreFailure { throw error }
                    logger.error("could not activate a downloaded image", metadata: [
                        "event": "firmware.storeFailed", "device_id": .string(id.description), "error": .string("\(error)"),
                    ])
                    report = ActivationReport(outcome: .activationFailure, reason: "the activation could not be stored: \(error)", device: state.devices[id])
                    activationNotStored = true
                }
                activation = report
                let feedback: OTAClient.Input = report.outcome == .success
                    ? .activated(report.device?.firmwareVersion ?? FirmwareVersion(0))
                    : .activationFailed(report.outcome, reason: report.reason)
                rest += client.receive(feedback, now: now, context: context)
            case .persist:
                break
            case .respond(.success) where activationNotStored:
                // The server may send its Upgrade End Response again.
                rest.append(.respond(.failure))
            default:
                rest.append(action)
            }
        }
        firmwareStates.withLock { $0[id, default: DeviceFirmwareState()].client = client }
        return ClientTurn(actions: rest, activation: activation)
    }

    /// Publishes what an activation decided, once its turn is over.
    func announce(_ report: ActivationReport?) {
        for event in report?.announcements ?? [] { events.publish(event.type, device: event.device, time: event.time, data: event.data) }
    }

    /// Commits a client's durable changes in one transaction, then mirrors its jobs in the schedule.
    private func commit(_ changes: [OTAClient.FirmwareChange], device id: EUI64, state: inout State, now: Timestamp) throws {
        let (inserted, removed) = try store.write { tx -> ([ScheduledJob], [Int64]) in
            var inserted: [ScheduledJob] = []
            var removed: [Int64] = []
            for change in changes {
                switch change {
                case let .hold(held, image):
                    // Most devices take an image the store already holds (a hub push to thousands):
                    // then there is no need to hand SQLite the whole image only to skip it.
                    if try !tx.firmwareImageExists(hash: held.hash) {
                        _ = try tx.saveFirmwareImage(hash: held.hash, manufacturerImage: image.manufacturerImage, at: now)
                    }
                    try tx.saveHeldFirmware(held, device: id, header: image.header.encoded(), signature: image.signature, at: now)
                case let .holdStatus(status, activateAt):
                    _ = try tx.updateHeldFirmware(device: id, status: status, activateAt: activateAt)
                case let .scheduleActivation(hash, due):
                    removed += try Self.deleteActivationJobs(of: id, tx)
                    let payload = String(decoding: try JSONEncoderShim.encode(PendingActivation(device: id.description, hash: hash)), as: UTF8.self)
                    inserted.append(try tx.insertJob(due: due, kind: JobKind.firmwareActivation.rawValue, payload: payload))
                case .cancelActivation:
                    removed += try Self.deleteActivationJobs(of: id, tx)
                }
            }
            return (inserted, removed)
        }
        guard !inserted.isEmpty || !removed.isEmpty else { return }
        for job in removed { state.schedule.remove(id: job) }
        for job in inserted { state.schedule.insert(job) }
        rearm(state)
    }

    /// Deletes `id`'s scheduled activations; returns their job IDs.
    private static func deleteActivationJobs(of id: EUI64, _ tx: StoreTransaction) throws -> [Int64] {
        var removed: [Int64] = []
        for job in try tx.jobs(kind: JobKind.firmwareActivation.rawValue) {
            if let pending = try? JSONEncoderShim.decode(PendingActivation.self, from: Array(job.payload.utf8)), pending.device == id.description {
                try tx.deleteJob(job.id)
                removed.append(job.id)
            }
        }
        return removed
    }

    /// An OTA client event, as the daemon publishes it.
    private func publish(_ event: OTAClient.Event, device id: EUI64, time: Timestamp) {
        switch event {
        case let .notified(server, version, accepted):
            var data: [String: EventValue] = ["server": .string(server.description), "accepted": .bool(accepted)]
            if let version { data["fileVersion"] = .string(upperHex(version, width: 8)) }
            events.publish(.firmwareNotified, device: id, time: time, data: data)
        case let .noImage(server, status):
            events.publish(.firmwareNoImage, device: id, time: time,
                           data: ["server": .string(server.description), "status": .string(ZCLStatus.describe(status))])
        case let .downloadStarted(server, image, resumedFrom):
            events.publish(.firmwareDownloadStarted, device: id, time: time, data: [
                "server": .string(server.description), "fileVersion": .string(upperHex(image.fileVersion, width: 8)),
                "imageSize": .int(Int64(image.imageSize)), "resumedFrom": .int(Int64(resumedFrom)),
            ])
        case let .progress(server, offset, size):
            // Not logged, so without a subscriber there is no one to tell (a hub push of 10,000
            // images would build a million of them).
            guard events.hasSubscribers(for: .firmwareProgress) else { return }
            events.publish(.firmwareProgress, device: id, time: time, data: [
                "server": .string(server.description), "fileOffset": .int(Int64(offset)), "imageSize": .int(Int64(size)),
                "percent": .int(Int64(UInt64(offset) * 100 / UInt64(max(1, size)))),
            ], level: .debug, log: false)
        case let .waitForData(server, currentTime, requestTime):
            events.publish(.firmwareWaitForData, device: id, time: time, data: [
                "server": .string(server.description), "currentTime": .int(Int64(currentTime)), "requestTime": .int(Int64(requestTime)),
            ])
        case let .aborted(server, reason):
            events.publish(.firmwareAborted, device: id, time: time, data: ["server": .string(server.description), "reason": .string(reason)])
        case let .refused(server, image, reason):
            events.publish(.firmwareRejected, device: id, time: time, data: [
                "server": .string(server.description), "fileVersion": .string(upperHex(image.fileVersion, width: 8)), "reason": .string(reason),
            ])
        case let .rejected(server, version, verdict):
            events.publish(.firmwareRejected, device: id, time: time, data: [
                "server": .string(server.description), "fileVersion": .string(upperHex(version, width: 8)),
                "reason": .string(verdict.summary), "failed": .array(verdict.failures.map { .string($0.name) }),
            ], level: .warning)
        case let .downloaded(server, held, imageSize):
            events.publish(.firmwareDownloaded, device: id, time: time, data: [
                "server": .string(server.description), "hash": .string(held.hash), "fileVersion": .string(held.fileVersion.hex),
                "imageSize": .int(Int64(imageSize)),
            ])
        case let .scheduled(hash, due):
            events.publish(.firmwareScheduled, device: id, time: time, data: ["hash": .string(hash), "activateAt": .string(due.rfc3339)])
        case let .waiting(hash, version):
            events.publish(.firmwareWaiting, device: id, time: time, data: ["hash": .string(hash), "fileVersion": .string(version.hex)])
        case let .ignored(server, reason):
            events.publish(.firmwareIgnored, device: id, time: time, data: ["server": .string(server.description), "reason": .string(reason)], level: .debug)
        case let .activationFailed(outcome, reason):
            events.publish(.firmwareActivationFailed, device: id, time: time,
                           data: ["outcome": .int(Int64(outcome.rawValue)), "name": .string(outcome.name), "reason": .string(reason)], level: .warning)
        case .storeFailed(let reason):
            logger.error("the store could not keep an OTA change; the device answered as it would", metadata: [
                "event": "firmware.storeFailed", "device_id": .string(id.description), "virtual_time": .string(time.rfc3339), "error": .string(reason),
            ])
        }
    }

    // MARK: checking an image

    /// Reads `file` and runs every rule the device itself applies (not the DCC's: a device knows
    /// neither the CPL nor its SMETS system). The image is nil when the file cannot be read (then the
    /// verdict holds only the failed `format` check).
    static func check(file: [UInt8], device: Device, model: DeviceModel, lab: LabSnapshot) -> (FirmwareVerdict, OTAImage?) {
        let image: OTAImage
        do {
            image = try OTAImage(parsing: file, options: .init(maxImageBytes: lab.settings.maxImageBytes))
        } catch {
            return (FirmwareRules.unreadable("\(error.reason): \(error.description)"), nil)
        }
        let target = FirmwareTarget(model: model, device: device.id, mode: device.mode, currentFirmware: device.firmwareVersion)
        let verdict = FirmwareRules.check(image.firmwareCandidate, format: image.formatDescription, for: target,
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

    /// A command from one of the hub's OTA clients: answered at once from the hub's offers (nothing
    /// the server does is durable).
    private func serverCommand(hub: EUI64, _ command: OTAServer.ClientCommand, from client: EUI64, frame: ZCLFrame) -> [ZCLFrame] {
        let now = now()
        let actions = firmwareStates.withLock { $0[hub, default: DeviceFirmwareState()].server.receive(.command(command, from: client), now: now) }
        var frames: [ZCLFrame] = []
        for action in actions {
            switch action {
            case .respond(.queryNextImageResponse(let response)): frames.append(respond(to: frame, with: response))
            case .respond(.imageBlockResponse(let response)): frames.append(respond(to: frame, with: response))
            case .respond(.upgradeEndResponse(let response)): frames.append(respond(to: frame, with: response))
            case .respond(.status(let status)): frames += Self.defaultResponse(to: frame, status: status)
            case let .event(.upgradeEnd(client, status, version)):
                events.publish(.firmwareUpgradeEnd, device: hub, time: now, data: [
                    "client": .string(client.description), "status": .string(ZCLStatus.describe(status)),
                    "fileVersion": .string(upperHex(version, width: 8)),
                ])
            case .notify:
                break  // only an offer notifies
            }
        }
        return frames
    }

    // MARK: firmware.update: the emulated hub pushes an image

    /// Reads an image for `firmware.update`: the typed reason when it cannot be read.
    public func readImage(_ file: [UInt8]) throws -> OTAImage {
        let limit = state.read { $0.lab.settings.maxImageBytes }
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
        // in memory), so they run on as many (bulk) threads as there are cores. Every occurrence of one
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
        // On bulk threads, below the event loops' priority: a push must not hold HAN reads up.
        let results = BulkWork.Slots<FirmwareUpdateResult>(count: targets.count)
        let work = lanes
        BulkWork.run(lanes: workers, nice: lab.settings.bulkThreadNice) { [self] lane in
            for index in work[lane] {
                results.set(index, push(file: file, image: image, hash: hash, to: targets[index], activation: activation))
            }
        }
        return (hash, results.values.compactMap { $0 })
    }

    /// At most this many `firmware.update` transfers at once (further limited by the cores).
    static let maxParallelPushes = 8

    private func push(file: [UInt8], image: OTAImage, hash: String, to id: EUI64, activation: FirmwareActivationTime) -> FirmwareUpdateResult {
        var result = FirmwareUpdateResult(device: id, outcome: "failed", reason: "", checks: [], activateAt: nil, firmwareVersion: nil)
        enum Route { case hub(EUI64, OutgoingZCL), refused(String, [FirmwareCheck]) }
        let route = state.read { state -> Route in
            let now = state.clock.now(real: realNow())
            guard let device = state.devices[id] else { return .refused("no device \(id)", []) }
            guard let model = state.lab.models[device.modelKey] else { return .refused("no model \(device.modelKey)", []) }
            // The DCC's checks first (eligibility, Requirement 7, the CPL); the device's own come on the device.
            let hubDevice = device.hub.flatMap { state.devices[$0] }
            let dccChecks = state.lab.dcc.firmwareChecks(fileVersion: FirmwareVersion(image.header.fileVersion), device: device, model: model, hub: hubDevice)
            if let failed = dccChecks.first(where: { !$0.passed }) {
                return .refused("the DCC refused: \(failed.reason)", dccChecks)
            }
            guard let hub = device.hub, hubDevice?.type == .chf else { return .refused("\(id) has not joined a Communications Hub", dccChecks) }
            return firmwareStates.withLock { states -> Route in
                states[id, default: DeviceFirmwareState()].client.forgetLastStep()
                let offer = OTAServer.Offer(file: file, header: image.header, hash: hash, activation: activation)
                let actions = states[hub, default: DeviceFirmwareState()].server.receive(.offer(offer, to: id), now: now)
                guard case let .notify(notify, _, sequence)? = actions.first else { return .refused("the hub did not offer the image", []) }
                return .hub(hub, OutgoingZCL(from: hub, to: id, cluster: ZCLClusterID.otaUpgrade,
                                             frame: ZCLFrame(notify, sequenceNumber: sequence, disableDefaultResponse: true)))
            }
        }
        let hub: EUI64
        switch route {
        case let .refused(reason, checks):
            result.outcome = "refused"
            result.reason = reason
            result.checks = checks
            events.publish(.firmwareRefused, device: id, time: now(), data: ["reason": .string(reason), "hash": .string(hash)], level: .warning)
            return result
        case let .hub(found, notify):
            hub = found
            exchange(notify, between: hub, and: id, limit: file.count + 64)
        }
        let (last, served, device) = state.read { state -> (OTAClient.Step?, OTAServer.Offer?, Device?) in
            firmwareStates.withLock { states -> (OTAClient.Step?, OTAServer.Offer?, Device?) in
                let served = states[hub]?.server.withdraw(id)
                return (states[id]?.client.lastStep, served, state.devices[id])
            }
        }
        result.firmwareVersion = device?.firmwareVersion
        result.describe(last, offered: FirmwareVersion(image.header.fileVersion), endStatus: served?.endStatus)
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
        let devices = state.read { state in [a: state.devices[a], b: state.devices[b]] }
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
            if faults.isActive {
                // Through the sender's rules, then the receiver's; what is left is relayed and handled
                // as bytes (a corrupted frame must be decoded again). Delays are not waited here.
                for zcl in impairNow(outgoing, bytes: bytes) {
                    var sent = outgoing
                    sent.encodedZCL = zcl
                    self.relay(sent, bytes: zcl, context: relay)
                    switch handleZCL(deviceID: outgoing.to, source: outgoing.from, profile: ZCLProfileID.smartEnergy, cluster: outgoing.cluster, zcl: zcl) {
                    case .now(let replies): queue += replies
                    case .blocking(let work): queue += work()
                    }
                }
                continue
            }
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
        let (sink, clock) = state.read { ($0.frameSink, $0.clock) }
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
        traces.record(outgoing.from, TracedFrame(time: time, direction: .outgoing, peer: outgoing.to, cluster: outgoing.cluster, zcl: bytes))
        traces.record(outgoing.to, TracedFrame(time: time, direction: .incoming, peer: outgoing.from, cluster: outgoing.cluster, zcl: bytes))
        if context.publishFrames {
            for (device, direction, peer) in [(outgoing.from, FrameDirection.outgoing, outgoing.to), (outgoing.to, FrameDirection.incoming, outgoing.from)] {
                var data = FrameNames.describe(cluster: outgoing.cluster, zcl: bytes)
                data["direction"] = .string(direction.rawValue)
                data["peer"] = .string(peer.description)
                events.publish(.hanFrame, device: device, time: time, data: data, log: false)
            }
        }
        var outgoing = outgoing
        outgoing.encodedZCL = bytes
        context.sink?(outgoing)
    }

    // MARK: activation

    /// Activate Firmware (CS06): switch `id` to the image it holds, now or at `time`.
    public func activateFirmware(_ id: EUI64, hash: String?, at time: Timestamp?) throws -> ActivationReport {
        let target = try requireDevice(id)
        // Activate Firmware is a service request: the DCC decides whether it may reach the device.
        let (dcc, model, hub) = state.read { state in (state.lab.dcc, state.lab.models[target.modelKey], target.hub.flatMap { state.devices[$0] }) }
        if let refusal = dcc.refusal(for: .firmwareActivate, device: target, model: model, hub: hub) {
            throw DomainError(.invalidState, "the DCC refused: \(refusal.message)")
        }
        let (decided, actions) = try serialized { state -> (ActivationReport, [OTAClient.Action]) in
            let now = state.clock.now(real: realNow())
            let turn = try clientTurn(id, .activationRequested(hash: hash, at: time), state: &state, now: now, onStoreFailure: .rethrow)
            if let activation = turn.activation { return (activation, turn.actions) }
            for case let .event(event) in turn.actions {
                switch event {
                case let .activationFailed(outcome, reason):
                    return (ActivationReport(outcome: outcome, reason: "\(id): \(reason)", device: state.devices[id]), turn.actions)
                case let .scheduled(_, due):
                    return (ActivationReport(outcome: .success, reason: "activation scheduled for \(due.rfc3339)", device: state.devices[id], scheduledAt: due),
                            turn.actions)
                default:
                    continue
                }
            }
            return (ActivationReport(outcome: .activationFailure, reason: "\(id) has no OTA Upgrade client", device: state.devices[id]), turn.actions)
        }
        announce(decided)
        _ = carryOut(id, actions, answering: nil)
        var report = decided
        report.announcements = []
        return report
    }

    /// Switches `id` to its held image `hash` inside a writer's turn: the device's firmware version
    /// changes in the store and in the draft, its inventory status follows the CPL, and the held
    /// image is released. `also` runs in the same transaction (a scheduled job deleting itself).
    /// Nothing is published here: the caller announces a success once the turn is over, and the OTA
    /// client publishes a refusal it is told of.
    func activateLocked(_ id: EUI64, hash: String, held: HeldFirmware?, state: inout State, now: Timestamp,
                        also: ((StoreTransaction) throws -> Void)? = nil) throws -> ActivationReport {
        func refuse(_ outcome: ActivationOutcome, _ reason: String) -> ActivationReport {
            ActivationReport(outcome: outcome, reason: reason, device: state.devices[id])
        }
        guard var device = state.devices[id] else { return refuse(.activationFailure, "no device \(id)") }
        guard let held, held.hash == hash else { return refuse(.noImageHeld, "\(id) holds no downloaded image \(hash)") }
        guard let model = state.lab.models[device.modelKey] else { return refuse(.activationFailure, "no model \(device.modelKey)") }
        let before = device
        device.firmwareVersion = held.fileVersion
        // The device runs what it activated; the DCC marks it Suspended when that is off the CPL.
        device.status = state.lab.dcc.statusAfterFirmwareChange(device, model: model, hubVersion: device.hub.flatMap { state.devices[$0]?.smetsVersion })
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
        let presented = state.lab.cpl.presentedFirmware(model: model, firmware: updated.firmwareVersion, mode: updated.mode, regime: state.lab.regime)
        var announcements = [Announcement(type: .firmwareActivated, device: id, time: now, data: [
            "hash": .string(held.hash), "from": .string(before.firmwareVersion.hex), "to": .string(updated.firmwareVersion.hex),
            "presentedFirmwareVersion": .string(presented.hex), "status": .string(updated.status.rawValue),
        ])]
        if updated.status != before.status {
            announcements.append(Announcement(type: .deviceStatus, device: id, time: now, data: ["status": .string(updated.status.rawValue)]))
        }
        return ActivationReport(outcome: .success, reason: "running \(updated.firmwareVersion.hex)", device: updated, announcements: announcements)
    }

    /// A scheduled activation is due (in a writer's turn, from `run(job)`). A failed commit throws,
    /// so that the job is tried again; a refusal ends the job.
    func runFirmwareActivationJob(_ job: ScheduledJob, state: inout State, now: Timestamp) throws {
        guard let pending = try? JSONEncoderShim.decode(PendingActivation.self, from: Array(job.payload.utf8)), let id = EUI64(pending.device) else {
            try store.write { try $0.deleteJob(job.id) }
            return
        }
        let turn = try clientTurn(id, .activationDue(hash: pending.hash), state: &state, now: now, onStoreFailure: .rethrow,
                                  also: { try $0.deleteJob(job.id) })
        if turn.activation?.outcome != .success { try store.write { try $0.deleteJob(job.id) } }
        // A job's turn has no "after" here: published at its end, as the other jobs do.
        announce(turn.activation)
        _ = carryOut(id, turn.actions, answering: nil)
    }

    // MARK: reads

    /// What `firmware.version` reports (shaped in ControlMethods+Firmware).
    public struct FirmwareStatus: Sendable {
        public var device: Device
        public var model: DeviceModel?
        /// The version the DCC's inventory presents (a fictitious one under `interim`).
        public var presented: FirmwareVersion
        public var firmware: DeviceFirmwareState
    }

    public func firmwareStatus(_ id: EUI64) throws -> FirmwareStatus {
        let device = try requireDevice(id)
        let firmware = firmwareState(id)
        return state.read { state in
            let model = state.lab.models[device.modelKey]
            let presented = model.map { state.lab.cpl.presentedFirmware(model: $0, firmware: device.firmwareVersion, mode: device.mode, regime: state.lab.regime) }
                ?? device.firmwareVersion
            return FirmwareStatus(device: device, model: model, presented: presented, firmware: firmware)
        }
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
