import Dispatch
import Foundation
import Logging
import SMETSCore
import SMETSDCC
import SMETSDUIS
import SMETSRPC
import SMETSStore
import Synchronization

/// The emulated DCC's DUIS front: a request document in, the synchronous reply out, and the
/// asynchronous responses (device responses) handed to the outbox after the reply has gone.
/// The checks run in duis.md §8's order; the DCC's decisions stay here and in SMETSDCC, the
/// device's answer is built from the device's state.
public final class DUISService: Sendable {
    let engine: Engine
    let settings: DUISSettings
    let outbox: DUISOutbox
    let logger: Logger
    /// `verify` mode's users (E1, E2); nil in lab mode.
    let trust: DUISTrustStore?
    /// The DCC's response signer, when `duis.signingKey` is set.
    let signer: DUISResponseSigner?
    /// Pre-commands handed out for CV 4, by RequestID, until CV 5/6 completes them.
    /// Each kept in the store too (`held`), so a restart keeps it (docs/duis.md).
    private let preCommands = Mutex<[RequestID: (bytes: [UInt8], expires: Int64, body: DUISBody, held: Int64?)]>([:])
    /// Device pre-notifications (12.2) the DCC holds for devices not (yet) in the lab.
    private let prenotified = Mutex<[EUI64: DUISBody.Prenotification]>([:])
    private let counter = Mutex<UInt64>(0)
    /// Future-dated work on the virtual clock: DSP-held requests (also in the store, `held`, so a
    /// restart keeps them) and devices' future-dated commands (in memory, as the device holds them).
    private let pending = Mutex<[PendingWork]>([])
    private let nextPending = Mutex<UInt64>(0)

    struct PendingWork: Sendable {
        var id: UInt64
        var due: Timestamp
        var device: EUI64
        var variant: String
        /// Its row in the store (`duis_held`), for a DSP-held request.
        var held: Int64?
        var run: @Sendable () -> Void
    }

    /// ExecutionDateTime 3000-12-31T00:00:00Z cancels the pending request of that variant (duis.md §5).
    static let cancelTime = Timestamp(rfc3339: "3000-12-31T00:00:00Z")!
    static let maxPending = 100_000

    /// The variants smetsd carries out; the rest of the subset is parsed and checked, then refused.
    static let implemented: Set<String> = ["8.2", "11.2", "12.2", "11.3", "8.7.1", "8.7.2", "8.8.1", "8.8.2", "3.2", "11.1", "11.4", "6.23", "8.13", "8.9",
                                                "8.11", "3.4", "2.2", "4.1.1"]
    /// How long a pre-command waits for its signed return.
    static let preCommandMillis: Int64 = 3_600_000
    static let maxPreCommands = 10_000

    public init(engine: Engine, settings: DUISSettings, outbox: DUISOutbox, logger: Logger, trust: DUISTrustStore? = nil,
                signer: DUISResponseSigner? = nil) {
        self.engine = engine; self.settings = settings; self.outbox = outbox; self.logger = logger
        self.trust = settings.verifies ? trust : nil
        self.signer = signer
    }

    /// A clock change may make future-dated work due (real time passing is the daemon's tick).
    public func watchClock() {
        _ = engine.events.subscribe(types: [EventType.clockChanged.rawValue]) { [weak self] _ in
            guard let service = self else { return }
            DispatchQueue.global().async { service.runDue() }
        }
    }

    /// Runs the future-dated work that is due on the virtual clock, in due order.
    public func runDue() {
        let now = engine.now()
        let due = pending.withLock { list -> [PendingWork] in
            let ready = list.filter { $0.due <= now }.sorted { ($0.due, $0.id) < ($1.due, $1.id) }
            list.removeAll { $0.due <= now }
            return ready
        }
        // Out of the store before it runs, so a restart cannot run it twice; when the store fails
        // the work waits for the next tick.
        let held = due.compactMap(\.held)
        if !held.isEmpty {
            do {
                try engine.store.write { try $0.deleteDUISHeld(held) }
            } catch {
                log(.warning, "duis.held", "held requests not run: the store failed", ["error": "\(error)"])
                pending.withLock { $0 += due }
                return
            }
        }
        for work in due { work.run() }
    }

    /// Holds `run` until `due`; false when too much is pending.
    func schedule(_ due: Timestamp, device: EUI64, variant: String, held: Int64? = nil, _ run: @escaping @Sendable () -> Void) -> Bool {
        let id = nextPending.withLock { $0 += 1; return $0 }
        return pending.withLock { list in
            guard list.count < Self.maxPending else { return false }
            list.append(PendingWork(id: id, due: due, device: device, variant: variant, held: held, run: run))
            return true
        }
    }

    enum Hold { case held, full, storeFailed(String) }

    /// A DSP-future-dated request: kept in the store (durable before the I99), then held until `due`.
    func hold(_ request: DUISRequest, until due: Timestamp, _ run: @escaping @Sendable () -> Void) -> Hold {
        guard pendingCount < Self.maxPending else { return .full }
        let row = DUISHeldRow(kind: .request, requestID: request.requestID.description, device: request.requestID.target.description,
                              variant: request.service.variant, due: due, document: request.document)
        let id: Int64
        do { id = try engine.store.write { try $0.insertDUISHeld(row) } } catch { return .storeFailed("\(error)") }
        guard schedule(due, device: request.requestID.target, variant: request.service.variant, held: id, run) else {
            _ = try? engine.store.write { try $0.deleteDUISHeld([id]) }
            return .full
        }
        return .held
    }

    /// Cancels the pending work of `variant` for `device`; how many were cancelled, nil when the
    /// store could not forget them (nothing is cancelled then).
    func cancel(device: EUI64, variant: String) -> Int? {
        let matching = pending.withLock { list in list.filter { $0.device == device && $0.variant == variant } }
        let held = matching.compactMap(\.held)
        if !held.isEmpty {
            do { try engine.store.write { try $0.deleteDUISHeld(held) } } catch {
                log(.warning, "duis.held", "the cancellation failed: the store failed", ["error": "\(error)"])
                return nil
            }
        }
        let ids = Set(matching.map(\.id))
        return pending.withLock { list in
            let before = list.count
            list.removeAll { ids.contains($0.id) }
            return before - list.count
        }
    }

    /// Rebuilds the held work the store kept (at start): each request document read by the same
    /// parser; one that no longer reads, or an expired pre-command, is dropped (logged).
    public func restoreHeld() {
        let rows: [DUISHeldRow]
        do { rows = try engine.store.read { try $0.allDUISHeld() } } catch {
            log(.error, "duis.held", "the held DUIS work could not be read", ["error": "\(error)"])
            return
        }
        var dropped: [Int64] = []
        var restored = 0
        let real = RealTime.now().unixMillis
        for row in rows {
            guard let request = try? DUISParser.parseDocument(row.document, limits: settings.xmlLimits).request.with(document: row.document) else {
                log(.warning, "duis.held", "a held request no longer reads; dropped", ["request_id": row.requestID])
                dropped.append(row.id)
                continue
            }
            switch row.kind {
            case .request:
                guard let answer = heldAnswer(request),
                      schedule(row.due, device: request.requestID.target, variant: request.service.variant, held: row.id, deliverer(request, answer)) else {
                    dropped.append(row.id)
                    continue
                }
                restored += 1
            case .preCommand:
                // An expired one is dropped, as if it had waited in memory.
                guard let bytes = row.payload, row.due.unixMillis > real else {
                    dropped.append(row.id)
                    continue
                }
                preCommands.withLock { $0[request.requestID] = (bytes, row.due.unixMillis, request.body, row.id) }
                restored += 1
            }
        }
        if !dropped.isEmpty { _ = try? engine.store.write { try $0.deleteDUISHeld(dropped) } }
        if !rows.isEmpty {
            log(.info, "duis.held", "held DUIS work restored: \(restored), dropped: \(dropped.count)", ["restored": "\(restored)", "dropped": "\(dropped.count)"])
        }
    }

    /// What a DSP-held request makes the device answer, rebuilt from the request alone.
    func heldAnswer(_ request: DUISRequest) -> (@Sendable () -> [DUISResponse])? {
        switch request.body {
        case .readFirmwareVersion: return { [self] in [readFirmwareVersion(request)] }
        case .readDeviceLog: return { [self] in [readDeviceLog(request)] }
        case .restrictAccessForChangeOfTenancy(_, let restriction): return { [self] in [restrictAccess(request, restriction: restriction)] }
        case .updateSupplierName(_, let name, let telephone): return { [self] in [updateSupplierName(request, name: name, telephone: telephone)] }
        case .readInstantaneousImportRegisters: return { [self] in [readImportRegisters(request)] }
        case .updateHANDeviceLog(let body): return { [self] in updateHANDeviceLogOnHub(request, body) }
        default: return nil
        }
    }

    public var pendingCount: Int { pending.withLock { $0.count } }

    /// What goes back over HTTP, and what follows asynchronously.
    public struct Reply: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String
        /// Runs after the reply is written: an async response never precedes its acknowledgement.
        public var then: (@Sendable () -> Void)?
    }

    static func plain(_ status: Int, _ text: String) -> Reply { Reply(status: status, contentType: "text/plain; charset=utf-8", body: text + "\n", then: nil) }

    /// Handles one request document posted to `path`; the XML reply signed when a DCC key is set.
    public func handle(path: DUISServicePath, body: [UInt8]) -> Reply {
        signed(respond(path: path, body: body))
    }

    func respond(path: DUISServicePath, body: [UInt8]) -> Reply {
        let parsed: DUISRequest, document: XMLElement
        do {
            (parsed, document) = try DUISParser.parseDocument(body, limits: settings.xmlLimits)
        } catch {
            let status = switch error.kind {
            case .tooLarge: 413
            case .unsupported: 501
            case .doctype, .entity, .notWellFormed, .invalid: 400
            }
            log(.warning, "duis.refused", "DUIS request refused before the DUIS checks", ["http_status": "\(status)", "reason": error.kind.rawValue, "error": error.message, "path": path.rawValue])
            return Self.plain(status, "\(error.kind.rawValue): \(error.message)")
        }
        let request = parsed.with(document: body)
        if let trust {
            // duis.md §8 step 2 (verify): the signer, then its counter.
            if let refusal = trust.authenticate(request, document: document) { return refuse(request, refusal, now: engine.now()) }
            if let refused = checkCounter(request, now: engine.now()) { return refused }
        } else if !request.signed || request.placeholderSignature {
            log(.info, "duis.unsigned", "lab signatures: accepted a request \(request.signed ? "with the placeholder signature" : "without a signature")",
                ["request_id": request.requestID.description])
        }
        let now = engine.now()
        if let refusal = checks(request, path: path) {
            return refuse(request, refusal, now: now)
        }
        guard Self.implemented.contains(request.service.variant) else {
            log(.warning, "duis.refused", "not carried out by smetsd", ["request_id": request.requestID.description, "reference": request.service.variant, "http_status": "501"])
            return Self.plain(501, "unsupported: service reference variant \(request.service.variant) passes the checks but is not carried out by smetsd yet (docs/duis.md lists what is)")
        }
        if request.commandVariant == 2 {
            return localCommand(request, now: now)
        }
        switch request.body {
        case .readInventory(let selector):
            return readInventory(request, selector, now: now)
        case .devicePrenotification(let notice):
            return prenotify(request, notice, now: now)
        case .readFirmwareVersion:
            return sendCommand(request, now: now) { [self] in readFirmwareVersion(request) }
        case .readDeviceLog:
            return sendCommand(request, now: now) { [self] in readDeviceLog(request) }
        case .activateFirmware, .join, .unjoin:
            guard request.commandVariant == 4 else {
                // 8.7.2 / 8.8.2: non-critical, straight to the device.
                return sendCommand(request, now: now) { [self] in execute(request, body: request.body, execution: nil) }
            }
            return preCommand(request, now: now)
        case .signedPreCommand(let execution, let payload):
            return signedPreCommand(request, execution: execution, payload: payload, now: now)
        case .updateFirmware(let image, _, let devices):
            return updateFirmware(request, image: image, devices: devices, now: now)
        case .updateSecurityCredentialsCoS, .returnLocalCommandResponse:
            // 6.23: validated and acknowledged, the device-side certificate change is out of scope;
            // 8.13: the DCC takes the locally delivered command's response.
            exchange(request, code: .accepted, message: "acknowledged")
            return Reply(status: 200, contentType: "application/xml", body: DUISResponse.reply(to: request, code: .accepted, at: now).xml, then: nil)
        case .restrictAccessForChangeOfTenancy(_, let restriction):
            return sendCommand(request, now: now) { [self] in restrictAccess(request, restriction: restriction) }
        case .updateHANDeviceLog(let log):
            return updateHANDeviceLog(request, log, now: now)
        case .updateSupplierName(_, let name, let telephone):
            return sendCommand(request, now: now) { [self] in updateSupplierName(request, name: name, telephone: telephone) }
        case .topUp(let utrn):
            return topUp(request, utrn: utrn, now: now)
        case .readInstantaneousImportRegisters where engine.device(request.requestID.target)?.type == .esme:
            return sendCommand(request, now: now) { [self] in readImportRegisters(request) }
        case .readInstantaneousImportRegisters:
            log(.warning, "duis.refused", "not carried out by smetsd", ["request_id": request.requestID.description, "reference": "4.1.1", "http_status": "501"])
            return Self.plain(501, "unsupported: 4.1.1 to a gas meter (GCS13a) passes the checks but is not carried out by smetsd yet (docs/duis.md)")
        }
    }

    /// duis.md §8 steps 3 to 6 (step 2, the signature, comes before; roles only in verify mode).
    func checks(_ request: DUISRequest, path: DUISServicePath) -> DUISRefusal? {
        if let refusal = DUISChecks.commandVariant(request, path: path) { return refusal }
        let lab = engine.lab
        let targetRefusal = DUISChecks.target(request, dccID: settings.dcc) { id in
            guard let device = engine.device(id) else { return nil }
            let hub = device.hub.flatMap { engine.device($0) }
            return TargetView(type: device.type, status: device.status, blocked: lab.dcc.interimMismatch(device, hubVersion: hub?.smetsVersion))
        }
        if let targetRefusal { return targetRefusal }
        return trust?.authorise(request)
    }

    func refuse(_ request: DUISRequest, _ refusal: DUISRefusal, now: Timestamp) -> Reply {
        let response = DUISResponse.reply(to: request, code: refusal.code, at: now)
        exchange(request, code: refusal.code, message: refusal.message, level: .warning)
        return Reply(status: 200, contentType: "application/xml", body: response.xml, then: nil)
    }

    func exchange(_ request: DUISRequest, code: ResponseCode, message: String, level: Logger.Level = .info) {
        engine.events.publish(.duisExchange, device: request.service.isDeviceRequest ? request.requestID.target : nil, time: engine.now(),
                              data: ["request_id": .string(request.requestID.description), "reference": .string(request.service.variant),
                                     "command_variant": .int(Int64(request.commandVariant)), "code": .string(code.rawValue), "detail": .string(message)],
                              level: level, message: "DUIS \(request.service.variant) \(code): \(message)")
    }

    func log(_ level: Logger.Level, _ event: String, _ message: String, _ fields: [String: String]) {
        var metadata: Logger.Metadata = ["event": .string(event)]
        for (key, value) in fields { metadata[key] = .string(value) }
        logger.log(level: level, "\(message)", metadata: metadata)
    }

    // MARK: non-device requests

    func readInventory(_ request: DUISRequest, _ selector: DUISBody.InventorySelector, now: Timestamp) -> Reply {
        guard case .device(let id) = selector else {
            let refusal = DUISRefusal(.noSuchDevice, "the lab holds no UPRN, MPxN or address; read the inventory by DeviceID")
            return refuse(request, refusal, now: now)
        }
        var entries: [InventoryEntry] = []
        if let device = engine.device(id) {
            let premises = engine.snapshot().devices.values.filter { $0.premisesID == device.premisesID && $0.id != device.id }.sorted { $0.id < $1.id }
            for member in [device] + premises.prefix(16) { entries.append(inventoryEntry(member)) }
        } else if let notice = prenotified.withLock({ $0[id] }) {
            entries.append(InventoryEntry(deviceID: notice.device, deviceType: notice.deviceType, status: InventoryStatus.pending.rawValue,
                                          manufacturer: notice.manufacturer, model: notice.model, smetsCHTSVersion: notice.smetsCHTSVersion,
                                          firmwareVersion: notice.firmwareVersion))
        } else {
            return refuse(request, DUISRefusal(.noSuchDevice, "\(id) is not in the inventory"), now: now)
        }
        exchange(request, code: .success, message: "\(entries.count) devices")
        return Reply(status: 200, contentType: "application/xml", body: DUISResponse.reply(to: request, code: .success, at: now, content: .inventory(entries)).xml, then: nil)
    }

    /// The inventory's view: the presented (possibly fictitious) firmware, the SMI's SMETS version,
    /// whether that identity is on the CPL.
    func inventoryEntry(_ device: Device) -> InventoryEntry {
        let lab = engine.lab
        let model = lab.models[device.modelKey]
        let hub = device.hub.flatMap { engine.device($0) }
        let presented = engine.presentedFirmware(of: device)
        let version = lab.dcc.inventoryVersion(of: device, hubVersion: hub?.smetsVersion)
        let smets = device.type == .chf ? "CHTS" : version == .smets1 ? "SMETS1" : "SMETS V5.2"
        let listed = model.map { lab.cpl.lists(model: $0, presented: presented, mode: device.mode == .undetermined ? SMETSMode(version) : device.mode, regime: lab.regime) }
        return InventoryEntry(deviceID: device.id, deviceType: device.type == .ihd ? "IHD" : device.type.name, status: device.status.rawValue,
                              manufacturer: model?.manufacturer.code ?? "0000", model: model?.modelId ?? "00000000", smetsCHTSVersion: smets,
                              firmwareVersion: presented.hex, firmwareVersionStatus: listed == true ? "Active" : nil, cplStatus: listed == true ? "Active" : nil,
                              cspRegion: device.region.rawValue)
    }

    func prenotify(_ request: DUISRequest, _ notice: DUISBody.Prenotification, now: Timestamp) -> Reply {
        if engine.device(notice.device) == nil {
            let count = prenotified.withLock { map -> Int in
                if map.count < Self.maxPreCommands || map[notice.device] != nil { map[notice.device] = notice }
                return map.count
            }
            _ = count
        }
        exchange(request, code: .accepted, message: "\(notice.device) pre-notified as \(notice.deviceType) \(notice.manufacturer)/\(notice.model)")
        return Reply(status: 200, contentType: "application/xml", body: DUISResponse.reply(to: request, code: .accepted, at: now).xml, then: nil)
    }

    /// 11.1 / 11.4: the DCC's checks per listed device (unknown -> Invalid, not installed ->
    /// NotCommissioned, not an OTA client, off the CPL or Requirement 7 -> NotApplicable), the
    /// warning or I99 now, then the hub distributes the image to the devices it accepted
    /// (firmware.update's transfer; PPMIDs activate by themselves).
    func updateFirmware(_ request: DUISRequest, image: [UInt8], devices: [EUI64], now: Timestamp) -> Reply {
        let ppmid = request.service.variant == "11.4"
        var warning = DUISResponse.FirmwareWarning()
        var accepted: [EUI64] = []
        let lab = engine.lab
        let fileVersion = (try? engine.readImage(image)).map { FirmwareVersion($0.header.fileVersion) }
        for id in devices {
            guard let device = engine.device(id), let model = lab.models[device.modelKey] else { warning.invalid.append(id); continue }
            guard let fileVersion, ppmid == (device.type == .ppmid) || (!ppmid && device.type != .ppmid) else { warning.notApplicable.append(id); continue }
            let hub = device.hub.flatMap { self.engine.device($0) }
            let checks = lab.dcc.firmwareChecks(fileVersion: fileVersion, device: device, model: model, hub: hub)
            if let failed = checks.first(where: { !$0.passed }) {
                if failed.name == "dccEligibility", lab.dcc.refusal(for: .firmwareUpdate, device: device, model: model, hub: hub)?.reason == .inventoryStatus {
                    warning.notCommissioned.append(id)
                } else {
                    warning.notApplicable.append(id)
                }
                continue
            }
            accepted.append(id)
        }
        if accepted.isEmpty {
            let code = ResponseCode(rawValue: ppmid ? "E110401" : "E110101")
            exchange(request, code: code, message: "no listed device takes the image", level: .warning)
            return Reply(status: 200, contentType: "application/xml", body: DUISResponse.reply(to: request, code: code, at: now).xml, then: nil)
        }
        let code = warning.isEmpty ? ResponseCode.accepted : ResponseCode(rawValue: ppmid ? "W110401" : "W110101")
        exchange(request, code: code, message: "\(accepted.count) of \(devices.count) devices take the image")
        let targets = accepted
        return Reply(status: 200, contentType: "application/xml",
                     body: DUISResponse.reply(to: request, code: code, at: now, content: warning.isEmpty ? nil : .firmwareWarning(ppmid: ppmid, warning)).xml) { [self] in
            distributeFirmware(request, image: image, version: fileVersion ?? FirmwareVersion(0), targets: targets)
        }
    }

    // MARK: device requests

    /// Sync I99, then the device's response, delivered once the I99 is written.
    /// A DSP-future-dated request (duis.md §5) is held until its ExecutionDateTime on the virtual
    /// clock; the cancel time removes the pending one of that variant for that device.
    func sendCommand(_ request: DUISRequest, now: Timestamp, device answer: @escaping @Sendable () -> DUISResponse) -> Reply {
        sendCommand(request, now: now, responses: { [answer()] })
    }

    /// As above, with what the device sends in order: its response, then any alert it raises.
    func sendCommand(_ request: DUISRequest, now: Timestamp, responses answer: @escaping @Sendable () -> [DUISResponse]) -> Reply {
        let deliver = deliverer(request, answer)
        let target = request.requestID.target, variant = request.service.variant
        if request.service.futureDating == .dsp, let execution = request.body.executionDateTime {
            if execution == Self.cancelTime {
                guard let cancelled = cancel(device: target, variant: variant) else {
                    return Self.plain(503, "storage unavailable: the held requests could not be cancelled")
                }
                exchange(request, code: .accepted, message: "cancelled \(cancelled) pending \(variant) for \(target)")
                return Reply(status: 200, contentType: "application/xml", body: DUISResponse.reply(to: request, code: .accepted, at: now).xml, then: nil)
            }
            if execution > now {
                switch hold(request, until: execution, deliver) {
                case .held: break
                case .full: return refuse(request, DUISRefusal(.commandVariant, "too many future-dated requests pending (\(Self.maxPending))"), now: now)
                case .storeFailed(let why):
                    log(.warning, "duis.held", "future-dated request not held: the store failed", ["request_id": request.requestID.description, "error": why])
                    return Self.plain(503, "storage unavailable: the future-dated request could not be kept")
                }
                exchange(request, code: .accepted, message: "held by the DCC until \(execution.rfc3339)")
                return Reply(status: 200, contentType: "application/xml", body: DUISResponse.reply(to: request, code: .accepted, at: now).xml, then: nil)
            }
        }
        exchange(request, code: .accepted, message: "accepted for \(target)")
        return Reply(status: 200, contentType: "application/xml", body: DUISResponse.reply(to: request, code: .accepted, at: now).xml, then: deliver)
    }

    /// Posts what the device answers, in order, each an exchange event.
    func deliverer(_ request: DUISRequest, _ answer: @escaping @Sendable () -> [DUISResponse]) -> @Sendable () -> Void {
        let outbox = self.outbox
        return { [self] in
            for response in answer() {
                if case .deviceAlert(let code, _) = response.body {
                    exchange(request, code: response.code, message: "device alert \(code) from \(response.responseID?.originator.description ?? "")")
                } else {
                    exchange(request, code: response.code, message: "device response")
                }
                outbox.post(response, originator: request.requestID.originator)
            }
        }
    }

    // MARK: the critical flow (duis.md §2)

    /// The GBCS command a critical request becomes, as the DCC transforms it: user-originated,
    /// counter = the RequestID counter, the use case's message code.
    func command(for request: DUISRequest, body: DUISBody, execution: Timestamp?) -> (header: GBCS.Header, content: [UInt8])? {
        let id = request.requestID.target
        guard let target = engine.device(id) else { return nil }
        let user = request.requestID.originator, counter = request.requestID.counter
        func header(_ code: GBCS.MessageCode) -> GBCS.Header {
            if target.type == .ppmid || target.type == .hcalcs {
                return GBCS.Header(cra: .command, counter: dccCounter(), originator: settings.dcc, recipient: id, dateTime: nil, messageCode: code.rawValue,
                                   supplementary: (user, counter))
            }
            return GBCS.Header(cra: .command, counter: counter, originator: user, recipient: id, dateTime: nil, messageCode: code.rawValue)
        }
        switch body {
        case .activateFirmware(let time, let hash):
            let h = header(.cs06)
            return (h, GBCS.cs06Command(hash: hash, counter: h.counter, execution: execution ?? time))
        case .join(let other):
            let otherType = engine.device(other)?.type ?? .ppmid
            let (code, method): (GBCS.MessageCode, UInt8) = switch (request.service.variant, target.type) {
            case ("8.7.1", .esme): (.cs03a1, 0)
            case ("8.7.1", .gsme): (.cs03c, 3)
            case ("8.7.1", _): (.cs03a2, 1)
            case (_, .ppmid): otherType == .gsme ? (.cs03c, 3) : (.cs03a2, 1)
            default: (.cs03b, 2)
            }
            return (header(code), GBCS.joinCommand(method: method, other: other, otherType: otherType))
        case .unjoin(let other):
            let code: GBCS.MessageCode = request.service.variant == "8.8.1" || target.type == .ppmid ? .cs04ac : .cs04b
            return (header(code), GBCS.unjoinCommand(other: other))
        default:
            return nil
        }
    }

    /// CV 2: the command for local delivery, I0 + `LocalCommand` (DD around the unsigned DF); the
    /// device's answer comes back through 8.13, not from smetsd.
    func localCommand(_ request: DUISRequest, now: Timestamp) -> Reply {
        var built = command(for: request, body: request.body, execution: nil)
        if built == nil, case .readFirmwareVersion = request.body, let target = engine.device(request.requestID.target) {
            let user = request.requestID.originator, counter = request.requestID.counter
            switch target.type {
            case .ppmid, .hcalcs:
                built = (GBCS.Header(cra: .command, counter: dccCounter(), originator: settings.dcc, recipient: target.id, dateTime: nil,
                                     messageCode: GBCS.MessageCode.cs08.rawValue, supplementary: (user, counter)), [0x05, 0x00])
            case .gsme:
                built = (GBCS.Header(cra: .command, counter: counter, originator: user, recipient: target.id, dateTime: nil, messageCode: GBCS.MessageCode.gcs38.rawValue),
                         [0x01, 0x09, 0x01, 0x01, 0x07, 0x02, 0x00, 0x05, 0x00, 0x00, 0x00, 0x06, 0x02])
            default:
                let header = GBCS.Header(cra: .command, counter: counter, originator: user, recipient: target.id, dateTime: nil, messageCode: GBCS.MessageCode.ecs52.rawValue)
                built = (header, [0xD9] + [0x20] + GBCS.be(counter & 0xFF_FFFF, bytes: 3) + [0x00, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x01, 0xFF, 0x02, 0x01, 0x00])
            }
        }
        if built == nil { built = localCommandOfRequests(request) }
        guard let (header, content) = built else {
            log(.warning, "duis.refused", "local delivery not carried out", ["request_id": request.requestID.description, "reference": request.service.variant, "http_status": "501"])
            return Self.plain(501, "unsupported: command variant 2 (local delivery) of \(request.service.variant) is not carried out by smetsd yet (docs/duis.md)")
        }
        let bytes = GBCS.generalCiphering(GBCS.generalSigning(header: header, content: content, signature: .none))
        exchange(request, code: .success, message: "command for local delivery, \(bytes.count) bytes")
        return Reply(status: 200, contentType: "application/xml",
                     body: DUISResponse.reply(to: request, code: .success, at: now, content: .localCommand(payload: bytes)).xml, then: nil)
    }

    /// CV 4: I0 with the unsigned pre-command, kept by RequestID for its signed return.
    func preCommand(_ request: DUISRequest, now: Timestamp) -> Reply {
        guard let (header, content) = command(for: request, body: request.body, execution: nil) else {
            return refuse(request, DUISRefusal(.noSuchDevice, "\(request.requestID.target) is not in the inventory"), now: now)
        }
        let bytes = GBCS.generalSigning(header: header, content: content, signature: .preCommand)
        let expires = RealTime.now().unixMillis + Self.preCommandMillis
        // Durable before it is handed out; the expired and the evicted leave the store in the same write.
        let (gone, replaced) = preCommands.withLock { kept -> ([Int64], Int64?) in
            let real = RealTime.now().unixMillis
            var gone = kept.values.filter { $0.expires <= real }.compactMap { $0.held }
            kept = kept.filter { $0.value.expires > real }
            if kept.count >= Self.maxPreCommands, let oldest = kept.min(by: { $0.value.expires < $1.value.expires })?.key {
                if let held = kept.removeValue(forKey: oldest)?.held { gone.append(held) }
            }
            return (gone, kept[request.requestID]?.held)
        }
        let row = DUISHeldRow(kind: .preCommand, requestID: request.requestID.description, device: request.requestID.target.description,
                              variant: request.service.variant, due: Timestamp(unixMillis: expires), document: request.document, payload: bytes)
        let held: Int64
        do {
            held = try engine.store.write { tx in
                try tx.deleteDUISHeld(gone + (replaced.map { [$0] } ?? []))
                return try tx.insertDUISHeld(row)
            }
        } catch {
            log(.warning, "duis.held", "pre-command not kept: the store failed", ["request_id": request.requestID.description, "error": "\(error)"])
            return Self.plain(503, "storage unavailable: the pre-command could not be kept")
        }
        preCommands.withLock { $0[request.requestID] = (bytes, expires, request.body, held) }
        exchange(request, code: .success, message: "pre-command for \(request.requestID.target), \(bytes.count) bytes, to be signed")
        return Reply(status: 200, contentType: "application/xml",
                     body: DUISResponse.reply(to: request, code: .success, at: now, content: .preCommand(gbcsVersion: "4.2", payload: bytes)).xml, then: nil)
    }

    /// CV 5 / 6: the signed pre-command must start with the bytes handed out for the same RequestID
    /// (lab mode does not check the appended GBCS signature).
    func signedPreCommand(_ request: DUISRequest, execution: Timestamp?, payload: [UInt8], now: Timestamp) -> Reply {
        let kept = preCommands.withLock { $0[request.requestID] }
        guard let kept, kept.expires > RealTime.now().unixMillis, payload.count > kept.bytes.count, payload.starts(with: kept.bytes),
              kept.body.sameVariant(as: request.service.variant) else {
            return refuse(request, DUISRefusal(.commandVariant, "no pre-command matches this SignedPreCommand (unknown or expired RequestID, or different bytes)"), now: now)
        }
        // Out of the store before it is carried out: a restart cannot let it be used twice.
        if let held = kept.held {
            do { try engine.store.write { try $0.deleteDUISHeld([held]) } } catch {
                log(.warning, "duis.held", "signed pre-command not carried out: the store failed", ["request_id": request.requestID.description, "error": "\(error)"])
                return Self.plain(503, "storage unavailable: the pre-command could not be completed")
            }
        }
        preCommands.withLock { _ = $0.removeValue(forKey: request.requestID) }
        if request.commandVariant == 6 {
            exchange(request, code: .success, message: "signed command for local delivery")
            return Reply(status: 200, contentType: "application/xml",
                         body: DUISResponse.reply(to: request, code: .success, at: now, content: .localCommand(payload: GBCS.generalCiphering(payload))).xml, then: nil)
        }
        let body = kept.body
        return sendCommand(request, now: now) { [self] in execute(request, body: body, execution: execution) }
    }

    /// A join, unjoin or activation reaching the device, and the device's response.
    func execute(_ request: DUISRequest, body: DUISBody, execution: Timestamp?) -> DUISResponse {
        let now = engine.now()
        guard let (command, _) = command(for: request, body: body, execution: execution), let target = engine.device(request.requestID.target) else {
            return DUISResponse.deviceResponse(to: request, code: .cannotCommunicate, at: now, content: nil)
        }
        let content: [UInt8]
        switch body {
        case .activateFirmware(let time, let hash) where (execution ?? time).map({ $0 > now }) == true:
            // Device future dating: the device takes the time, answers NULL now and raises 8F66/8F67 then;
            // the cancel time withdraws the pending one.
            let when = (execution ?? time)!
            if when == Self.cancelTime {
                _ = cancel(device: target.id, variant: "11.3")
            } else {
                let scheduled = schedule(when, device: target.id, variant: "11.3") { [self] in
                    futureDatedActivation(request, hash: hash, execution: when, commandCounter: command.counter)
                }
                if !scheduled { return DUISResponse.deviceResponse(to: request, code: .cannotCommunicate, at: now, content: nil) }
            }
            content = GBCS.cs06Scheduled
        case .activateFirmware(let time, let hash):
            let when = execution ?? time
            let report: ActivationReport
            do {
                report = try engine.activateFirmware(target.id, hash: Hex.encode(hash).lowercased(), at: when)
            } catch {
                return DUISResponse.deviceResponse(to: request, code: .cannotCommunicate, at: now, content: nil)
            }
            let running = engine.device(target.id)?.firmwareVersion ?? target.firmwareVersion
            content = report.scheduledAt != nil ? GBCS.cs06Scheduled : GBCS.cs06Response(rc: report.outcome.rawValue, version: running)
        case .join(let other):
            content = GBCS.resultCode(pair(target, other, join: true))
        case .unjoin(let other):
            content = GBCS.resultCode(pair(target, other, join: false))
        default:
            return DUISResponse.deviceResponse(to: request, code: .cannotCommunicate, at: now, content: nil)
        }
        return DUISResponse.deviceResponse(to: request, code: .success, at: now, content: .gbcsPayload(GBCS.response(header: command.response(at: now), content: content)))
    }

    /// A future-dated CS06 reaching its time: the device activates (or fails to) and raises the
    /// 00CA alert, carried in an I0 ResponseMessage as FutureDatedDeviceAlertMessage.
    func futureDatedActivation(_ request: DUISRequest, hash: [UInt8], execution: Timestamp, commandCounter: UInt64) {
        let id = request.requestID.target
        let outcome: ActivationOutcome
        do { outcome = try engine.activateFirmware(id, hash: Hex.encode(hash).lowercased(), at: nil).outcome } catch { outcome = .activationFailure }
        let running = engine.device(id)?.firmwareVersion ?? FirmwareVersion(0)
        let now = engine.now()
        let header = GBCS.Header(cra: .alert, counter: alertCounter(id), originator: id, recipient: request.requestID.originator, dateTime: nil,
                                 messageCode: GBCS.MessageCode.cs06Alert.rawValue)
        let content = GBCS.cs06OutcomeAlert(success: outcome == .success, execution: execution, commandCounter: commandCounter, rc: outcome.rawValue, version: running)
        let alert = GBCS.generalSigning(header: header, content: content, signature: .signed(GBCS.placeholderSignature(header: header, content: content)))
        let code = outcome == .success ? "8F66" : "8F67"
        let response = DUISResponse.deviceResponse(to: request, code: .success, at: now,
                                                   content: .futureDatedAlert(code: code, payload: alert, instruction: 1, totalInstructions: 1))
        exchange(request, code: .success, message: "future-dated activation ran: \(code) (\(outcome.name))")
        outbox.post(response, originator: request.requestID.originator)
    }

    /// A device's alert counter (gbcs.md §4): strictly increasing per device, max(last + 1, Unix ms),
    /// kept in the store (`meta`, `duis.alertCounter.<EUI>`) before the alert that carries it is built,
    /// so neither a restart nor a clock set back repeats one. When the store fails the alert still
    /// goes, with the DCC's in-memory counter (logged): the device would not hold its alert back.
    func alertCounter(_ device: EUI64) -> UInt64 {
        let key = "duis.alertCounter.\(device)", floor = UInt64(max(0, engine.realNow().unixMillis))
        do {
            return try engine.store.write { tx in
                let next = max((try tx.meta(key).flatMap { UInt64($0) } ?? 0) + 1, floor)
                try tx.setMeta(key, String(next))
                return next
            }
        } catch {
            log(.warning, "duis.alertCounter", "the alert counter could not be kept; an in-memory one is used", ["device_id": device.description, "error": "\(error)"])
            return dccCounter()
        }
    }

    /// The inventory side of a pairing: the HAN device of the two (not a meter) joins or leaves the
    /// other's Communications Hub. GBCS result codes: 0 success; join 5 write failure (refused by the
    /// DCC's rules, logged); unjoin 1 not in the log.
    func pair(_ target: Device, _ otherID: EUI64, join: Bool) -> UInt8 {
        let meters: Set<DeviceType> = [.esme, .gsme, .gpf, .chf]
        guard let other = engine.device(otherID) else { return join ? 5 : 1 }
        let (device, partner) = meters.contains(target.type) ? (other, target) : (target, other)
        guard !meters.contains(device.type) else { return 0 }  // meter to meter: nothing the inventory records
        do {
            if join {
                guard let hub = partner.type == .chf ? partner.id : partner.hub else { return 5 }
                if device.hub != hub { _ = try engine.join(device.id, hub: hub) }
            } else {
                guard device.hub != nil else { return 1 }
                _ = try engine.leave(device.id)
            }
            return 0
        } catch {
            log(.warning, "duis.pairing", "the pairing was refused", ["device_id": device.id.description, "error": "\(error)"])
            return join ? 5 : 2
        }
    }

    /// 3.2: ECS12 (ESME) or GCS09 (GPF); the premises' devices clear what was recorded up to the
    /// restriction time (Change of Tenancy, gb-smart-metering.md).
    func restrictAccess(_ request: DUISRequest, restriction: Timestamp) -> DUISResponse {
        let now = engine.now()
        guard let target = engine.device(request.requestID.target) else { return DUISResponse.deviceResponse(to: request, code: .cannotCommunicate, at: now, content: nil) }
        var result: UInt8 = 0
        do {
            _ = try engine.changeTenancy(premises: [target.premisesID], control: TenancyRules.clearAllOccupantData, implementationTime: restriction)
        } catch {
            log(.warning, "duis.tenancy", "the Change of Tenancy failed", ["device_id": target.id.description, "error": "\(error)"])
            result = 250
        }
        let user = request.requestID.originator, counter = request.requestID.counter
        let payload: [UInt8]
        if target.type == .gpf {
            let header = GBCS.Header(cra: .command, counter: counter, originator: user, recipient: target.id, dateTime: nil, messageCode: GBCS.MessageCode.gcs09.rawValue)
            payload = GBCS.response(header: header.response(at: now), content: [0x01, 0x09, 0x01, 0x01, 0x07, 0x08, 0x00, 0x05, 0x00, 0x00, 0x0B, 0x00, result == 0 ? 0 : 1])
        } else {
            let header = GBCS.Header(cra: .command, counter: counter, originator: user, recipient: target.id, dateTime: nil, messageCode: GBCS.MessageCode.ecs12.rawValue)
            payload = GBCS.response(header: header.response(at: now), content: GBCS.dlmsSetResponse(counter: counter, result: result))
        }
        return DUISResponse.deviceResponse(to: request, code: .success, at: now, content: .gbcsPayload(payload))
    }

    /// 8.9: a CHF answers CCS06 with its device log (the devices joined to it; ACB-originated), any
    /// other device CS07 with the devices it is joined with (the others on its hub in its premises).
    func readDeviceLog(_ request: DUISRequest) -> DUISResponse {
        let now = engine.now()
        guard let target = engine.device(request.requestID.target) else { return DUISResponse.deviceResponse(to: request, code: .cannotCommunicate, at: now, content: nil) }
        let user = request.requestID.originator, counter = request.requestID.counter
        let others = engine.snapshot().devices.values.filter { $0.premisesID == target.premisesID && $0.id != target.id }.sorted { $0.id < $1.id }
        let payload: [UInt8]
        if target.type == .chf {
            let header = GBCS.Header(cra: .command, counter: dccCounter(), originator: settings.dcc, recipient: target.id, dateTime: nil,
                                     messageCode: GBCS.MessageCode.ccs06.rawValue, supplementary: (user, counter))
            let log = others.filter { $0.hub == target.id }.prefix(255).map { GBCS.CHFLogEntry(device: $0.id, lastCommunication: now) }
            payload = GBCS.response(header: header.response(at: now), content: GBCS.ccs06Response(counter: header.counter, entries: Array(log)))
        } else {
            let header = GBCS.Header(cra: .command, counter: counter, originator: user, recipient: target.id, dateTime: nil, messageCode: GBCS.MessageCode.cs07.rawValue)
            let joined = target.hub == nil ? [] : others.filter { $0.hub == target.hub && $0.type != .chf }.prefix(64).map { ($0.id, $0.type) }
            payload = GBCS.response(header: header.response(at: now), content: GBCS.cs07Response(entries: Array(joined)))
        }
        return DUISResponse.deviceResponse(to: request, code: .success, at: now, content: .gbcsPayload(payload))
    }

    /// The DCC's own counter for commands it originates: max(last + 1, Unix ms) (gbcs.md §4).
    func dccCounter() -> UInt64 {
        counter.withLock { last in
            last = max(last + 1, UInt64(max(0, RealTime.now().unixMillis)))
            return last
        }
    }

    /// 11.2: CS08 (PPMID, HCALCS; ACB-originated), ECS52 (ESME, CHF) or GCS38 (GSME), from the
    /// firmware the device runs.
    func readFirmwareVersion(_ request: DUISRequest) -> DUISResponse {
        let id = request.requestID.target, user = request.requestID.originator
        guard let device = engine.device(id) else {
            return DUISResponse.deviceResponse(to: request, code: .cannotCommunicate, at: engine.now(), content: nil)
        }
        let now = engine.now()
        let version = device.firmwareVersion
        let payload: [UInt8]
        switch device.type {
        case .ppmid, .hcalcs:
            let command = GBCS.Header(cra: .command, counter: dccCounter(), originator: settings.dcc, recipient: id, dateTime: nil,
                                      messageCode: GBCS.MessageCode.cs08.rawValue, supplementary: (user, request.requestID.counter))
            payload = GBCS.response(header: command.response(at: now), content: GBCS.cs08Response(version: version))
        case .gsme:
            let command = GBCS.Header(cra: .command, counter: request.requestID.counter, originator: user, recipient: id, dateTime: nil, messageCode: GBCS.MessageCode.gcs38.rawValue)
            payload = GBCS.response(header: command.response(at: now), content: GBCS.gcs38Response(version: version))
        default:
            let command = GBCS.Header(cra: .command, counter: request.requestID.counter, originator: user, recipient: id, dateTime: nil, messageCode: GBCS.MessageCode.ecs52.rawValue)
            payload = GBCS.response(header: command.response(at: now), content: GBCS.ecs52Response(counter: command.counter, version: version))
        }
        return DUISResponse.deviceResponse(to: request, code: .success, at: now, content: .gbcsPayload(payload))
    }
}

extension DUISBody {
    /// Whether this (critical) body belongs to `variant`.
    func sameVariant(as variant: String) -> Bool {
        switch self {
        case .activateFirmware: variant == "11.3"
        case .join: variant == "8.7.1"
        case .unjoin: variant == "8.8.1"
        default: false
        }
    }
}

extension DUISSettings {
    /// The XML reader's limits, from the settings (SMETSConfig knows nothing of the reader).
    var xmlLimits: XMLLimits { XMLLimits(maxBytes: maxBodyBytes, maxDepth: maxDepth, maxElements: maxElements, maxAttributes: maxAttributes) }
}
