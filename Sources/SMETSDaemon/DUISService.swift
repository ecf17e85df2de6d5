import Foundation
import Logging
import SMETSCore
import SMETSDCC
import SMETSDUIS
import SMETSRPC
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
    /// Pre-commands handed out for CV 4, by RequestID, until CV 5/6 completes them.
    private let preCommands = Mutex<[RequestID: (bytes: [UInt8], expires: Int64)]>([:])
    /// Device pre-notifications (12.2) the DCC holds for devices not (yet) in the lab.
    private let prenotified = Mutex<[EUI64: DUISBody.Prenotification]>([:])
    private let counter = Mutex<UInt64>(0)

    /// The variants smetsd carries out; the rest of the subset is parsed and checked, then refused.
    static let implemented: Set<String> = ["8.2", "11.2", "12.2"]
    static let maxPreCommands = 10_000

    public init(engine: Engine, settings: DUISSettings, outbox: DUISOutbox, logger: Logger) {
        self.engine = engine; self.settings = settings; self.outbox = outbox; self.logger = logger
    }

    /// What goes back over HTTP, and what follows asynchronously.
    public struct Reply: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String
        /// Runs after the reply is written: an async response never precedes its acknowledgement.
        public var then: (@Sendable () -> Void)?
    }

    static func plain(_ status: Int, _ text: String) -> Reply { Reply(status: status, contentType: "text/plain; charset=utf-8", body: text + "\n", then: nil) }

    /// Handles one request document posted to `path`.
    public func handle(path: DUISServicePath, body: [UInt8]) -> Reply {
        let request: DUISRequest
        do {
            request = try DUISParser.parse(body, limits: settings.xmlLimits)
        } catch {
            let status = switch error.kind {
            case .tooLarge: 413
            case .unsupported: 501
            case .doctype, .entity, .notWellFormed, .invalid: 400
            }
            log(.warning, "duis.refused", "DUIS request refused before the DUIS checks", ["http_status": "\(status)", "reason": error.kind.rawValue, "error": error.message, "path": path.rawValue])
            return Self.plain(status, "\(error.kind.rawValue): \(error.message)")
        }
        if !request.signed || request.placeholderSignature {
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
        switch request.body {
        case .readInventory(let selector):
            return readInventory(request, selector, now: now)
        case .devicePrenotification(let notice):
            return prenotify(request, notice, now: now)
        case .readFirmwareVersion:
            return sendCommand(request, now: now) { [self] in readFirmwareVersion(request) }
        default:
            return Self.plain(501, "unsupported: \(request.service.variant)")
        }
    }

    /// duis.md §8 steps 3 to 5 (step 2 is lab mode's: signatures are not verified).
    func checks(_ request: DUISRequest, path: DUISServicePath) -> DUISRefusal? {
        if let refusal = DUISChecks.commandVariant(request, path: path) { return refusal }
        let lab = engine.lab
        return DUISChecks.target(request, dccID: settings.dcc) { id in
            guard let device = engine.device(id) else { return nil }
            let hub = device.hub.flatMap { engine.device($0) }
            return TargetView(type: device.type, status: device.status, blocked: lab.dcc.interimMismatch(device, hubVersion: hub?.smetsVersion))
        }
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

    // MARK: device requests

    /// Sync I99, then the device's response, delivered once the I99 is written.
    func sendCommand(_ request: DUISRequest, now: Timestamp, device answer: @escaping @Sendable () -> DUISResponse) -> Reply {
        exchange(request, code: .accepted, message: "accepted for \(request.requestID.target)")
        let outbox = self.outbox
        return Reply(status: 200, contentType: "application/xml", body: DUISResponse.reply(to: request, code: .accepted, at: now).xml) { [self] in
            let response = answer()
            exchange(request, code: response.code, message: "device response")
            outbox.post(response, originator: request.requestID.originator)
        }
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
