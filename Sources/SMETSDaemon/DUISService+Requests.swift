import Crypto
import SMETSCore
import SMETSDUIS
import SMETSDevices

/// 8.11 Update HAN Device Log, 3.4 Update Supplier Name, 2.2 Top Up Device and 4.1.1 Read
/// Instantaneous Import Registers: the DCC's body rules, then the device's change through the engine
/// (committed before the device response is built), then the GBCS answer from the device's state.
extension DUISService {
    /// 8.11 (step 7 first: Add carries AddDeviceToCHFWhitelist, Remove does not, E081101; the
    /// device must be in the inventory, E19), then I99, the CHF's CCS01 / CCS02 response and, when
    /// its log changed, its CS14 alert (8F12) with the whole log.
    func updateHANDeviceLog(_ request: DUISRequest, _ body: DUISBody.UpdateHANDeviceLog, now: Timestamp) -> Reply {
        if body.add != (body.joinTimePeriod != nil) {
            return refuse(request, DUISRefusal(ResponseCode(rawValue: "E081101"), body.add ? "RequestType Add needs AddDeviceToCHFWhitelist"
                                                                                                  : "RequestType Remove carries no AddDeviceToCHFWhitelist"), now: now)
        }
        guard engine.device(body.device) != nil else {
            return refuse(request, DUISRefusal(.noSuchDevice, "\(body.device) (DeviceID) is not in the inventory"), now: now)
        }
        return sendCommand(request, now: now, responses: { [self] in updateHANDeviceLogOnHub(request, body) })
    }

    func updateHANDeviceLogOnHub(_ request: DUISRequest, _ body: DUISBody.UpdateHANDeviceLog) -> [DUISResponse] {
        let hub = request.requestID.target, user = request.requestID.originator
        let now = engine.now()
        let code: GBCS.MessageCode = body.add ? .ccs01 : .ccs02
        // Every CHF command is ACB-originated on the user's behalf (gbcs.md §4).
        let command = GBCS.Header(cra: .command, counter: dccCounter(), originator: settings.dcc, recipient: hub, dateTime: nil,
                                  messageCode: code.rawValue, supplementary: (user, request.requestID.counter))
        var changed = false
        let ok: Bool
        do {
            let (before, after) = try engine.updateHANDeviceLog(hub: hub, device: body.device, add: body.add)
            changed = before.status != after.status || before.hub != after.hub
            ok = true
            log(.info, "duis.hanDeviceLog", "\(body.add ? "added" : "removed") \(body.device) \(body.add ? "to" : "from") \(hub)'s whitelist: \(after.status)",
                ["request_id": request.requestID.description, "device_id": body.device.description])
        } catch {
            ok = false
            log(.warning, "duis.hanDeviceLog", "the hub refused the whitelist change", ["request_id": request.requestID.description, "error": "\(error)"])
        }
        // RTDS: success `03 00 02 00 02 00`, error `03 00 02 01 02 FA`; CCS02 one action result (250 other).
        let results: (action: UInt8, timeout: UInt8, enable: UInt8) = ok ? (0, 0, 0) : (0, 1, 0xFA)
        let content = body.add ? GBCS.ccs01Response(counter: command.counter, results: results)
                               : GBCS.dlmsActionResponse(counter: command.counter, result: ok ? 0 : 0xFA)
        var responses = [DUISResponse.deviceResponse(to: request, code: .success, at: now,
                                                     content: .gbcsPayload(GBCS.response(header: command.response(at: now), content: content)))]
        if changed { responses.append(deviceLogChangedAlert(request, hub: hub, at: now)) }
        return responses
    }

    /// CS14 (0018, CHF -> ACB, DD around an unsigned DF): the CHF's whole device log after a change,
    /// as a DeviceAlertMessage 8F12 to the user. The extended PAN ID is the hub's EUI and the link
    /// key hashes are lab placeholders (the emulated HAN has no Trust Centre keys); a device on the
    /// whitelist that has not joined has no link key yet (`09 00`).
    func deviceLogChangedAlert(_ request: DUISRequest, hub: EUI64, at now: Timestamp) -> DUISResponse {
        let entries = engine.whitelist(of: hub).map { device in
            GBCS.CHFLogKey(device: device.id, linkKeyHash: device.hub == hub ? Self.labLinkKeyHash(hub: hub, device: device.id) : nil)
        }
        let counter = alertCounter(hub)
        let header = GBCS.Header(cra: .alert, counter: counter, originator: hub, recipient: settings.dcc, dateTime: nil,
                                 messageCode: GBCS.MessageCode.cs14Alert.rawValue)
        let content = GBCS.cs14Alert(counter: counter, time: now, panID: hub.rawValue, entries: entries)
        let payload = GBCS.generalCiphering(GBCS.generalSigning(header: header, content: content, signature: .none))
        return DUISResponse.deviceAlert(schemaVersion: request.schemaVersion, device: hub, user: request.requestID.originator, counter: counter,
                                        at: now, alertCode: "8F12", payload: payload)
    }

    /// A stable stand-in for the hash of a joined device's TC link key: the first 16 bytes of
    /// SHA-256 of the hub's and the device's EUIs.
    static func labLinkKeyHash(hub: EUI64, device: EUI64) -> [UInt8] {
        Array(Array(SHA256.hash(data: GBCS.be(hub.rawValue, bytes: 8) + GBCS.be(device.rawValue, bytes: 8))).prefix(16))
    }

    /// 3.4: the meter of the target's premises keeps the name and number and sends them to the
    /// displays (the Change of Supplier path, provider unchanged); ECS16 (ESME) or GCS44 (GSME).
    func updateSupplierName(_ request: DUISRequest, name: String, telephone: String) -> DUISResponse {
        let now = engine.now()
        guard let target = engine.device(request.requestID.target) else {
            return DUISResponse.deviceResponse(to: request, code: .cannotCommunicate, at: now, content: nil)
        }
        var ok = true
        do {
            let provider = try engine.supplierProvider(premises: target.premisesID)
            let notified = try engine.changeSupplier(premises: target.premisesID, provider: provider, name: name, telephone: telephone)
            log(.info, "duis.supplierName", "supplier name and telephone number sent to \(notified.count) displays",
                ["request_id": request.requestID.description, "premises": target.premisesID])
        } catch {
            ok = false
            log(.warning, "duis.supplierName", "the supplier name was not kept", ["request_id": request.requestID.description, "error": "\(error)"])
        }
        let user = request.requestID.originator, counter = request.requestID.counter
        let gas = target.type == .gsme
        let header = GBCS.Header(cra: .command, counter: counter, originator: user, recipient: target.id, dateTime: nil,
                                 messageCode: (gas ? GBCS.MessageCode.gcs44 : .ecs16).rawValue)
        // ZCL FAILURE (01) / DLMS temporary failure (2) when the meter could not keep them.
        let content = gas ? GBCS.gcs44Response(status: ok ? 0 : 0x01) : GBCS.ecs16Response(counter: counter, result: ok ? 0 : 2)
        return DUISResponse.deviceResponse(to: request, code: .success, at: now, content: .gbcsPayload(GBCS.response(header: header.response(at: now), content: content)))
    }

    /// 2.2: the UTRN's checks (duis.md §6.11: check digit, value class, counter against the
    /// RequestID counter; not the GMAC in lab mode), then the Prepayment machine at the meter that
    /// holds the credit (the ESME, or for a GSME its premises' GPF); CS01a (ESME) or CS01b (GSME).
    func topUp(_ request: DUISRequest, utrn: String, now: Timestamp) -> Reply {
        guard let target = engine.device(request.requestID.target) else {
            return refuse(request, DUISRefusal(.noSuchDevice, "\(request.requestID.target) is not in the inventory"), now: now)
        }
        let gas = target.type == .gsme
        // The premises index, not a scan of every device: a lab may hold 100,000 of them.
        let snapshot = engine.snapshot()
        let holder = gas ? snapshot.premises[target.premisesID]?.first { snapshot.devices[$0]?.type == .gpf } : target.id
        guard let holder else {
            return refuse(request, DUISRefusal(.deviceStatus, "\(target.id)'s premises has no GPF to hold its credit"), now: now)
        }
        return sendCommand(request, now: now) { [self] in topUpAtMeter(request, target: target, holder: holder, utrn: utrn) }
    }

    func topUpAtMeter(_ request: DUISRequest, target: Device, holder: EUI64, utrn: String) -> DUISResponse {
        let gas = target.type == .gsme
        var value: Int32?
        do {
            value = try UTRN.decode(utrn, requestCounter: request.requestID.counter).pence
        } catch {
            log(.warning, "duis.topUp", "the UTRN fails its checks: \(error)", ["request_id": request.requestID.description, "utrn": utrn])
        }
        let outcome = engine.topUpOverWAN(meter: holder, code: utrn, value: value, source: gas ? 0x01 : 0x00, from: settings.dcc)
        log(outcome.result == .accepted ? .info : .warning, "duis.topUp", "top-up \(outcome.result) at \(holder): \(outcome.value) pence, credit \(outcome.creditRemaining)",
            ["request_id": request.requestID.description, "device_id": holder.description])
        let now = engine.now()
        let user = request.requestID.originator, counter = request.requestID.counter
        let header = GBCS.Header(cra: .command, counter: counter, originator: user, recipient: target.id, dateTime: nil,
                                 messageCode: (gas ? GBCS.MessageCode.cs01b : .cs01a).rawValue)
        let content: [UInt8]
        if gas {
            content = GBCS.cs01bResponse(result: outcome.result.rawValue, value: outcome.value, source: 0x01,
                                         credit: outcome.result == .accepted ? outcome.creditRemaining : nil)
        } else {
            content = GBCS.dlmsActionResponse(counter: counter, result: Self.cs01aResult(outcome.result))
        }
        return DUISResponse.deviceResponse(to: request, code: .success, at: now, content: .gbcsPayload(GBCS.response(header: header.response(at: now), content: content)))
    }

    /// The DLMS action result an ESME gives for a top-up outcome (gbcs.md §5.0 lists the codes,
    /// not which a refused UTRN takes): accepted 0; invalid 3 (read-write denied: the token is
    /// refused); duplicate 250 (other reason); error 2 (temporary failure: a credit the meter cannot
    /// hold now, or a store that could not keep it).
    static func cs01aResult(_ result: Prepayment.TopUpResult) -> UInt8 {
        switch result {
        case .accepted: 0
        case .rejectedInvalid: 3
        case .rejectedDuplicate: 250
        case .rejectedError: 2
        }
    }

    /// 4.1.1 to an ESME: ECS17b with its active import register (the load profile's cumulative
    /// energy, Wh, the one Metering's CurrentSummationDelivered serves) and reactive import 0 (the
    /// emulator models no reactive energy), encrypted as gbcs.md §2.4 says for a user whose KA key
    /// smetsd does not hold: under the all-zero key.
    func readImportRegisters(_ request: DUISRequest) -> DUISResponse {
        let now = engine.now()
        guard let target = engine.device(request.requestID.target) else {
            return DUISResponse.deviceResponse(to: request, code: .cannotCommunicate, at: now, content: nil)
        }
        let user = request.requestID.originator, counter = request.requestID.counter
        let header = GBCS.Header(cra: .command, counter: counter, originator: user, recipient: target.id, dateTime: nil, messageCode: GBCS.MessageCode.ecs17b.rawValue)
        let active = UInt32(clamping: max(0, LoadProfile.cumulative(device: target.id, type: .esme, at: now)))
        let registers = GBCS.ImportRegisters(activeWh: active, reactiveVarh: 0)
        let sealed = try? GBCS.ecs17bEncrypt(registers.plaintext, key: Self.unknownUserKey, originator: target.id)
        log(.info, "duis.importRegisters", "ECS17b: active import \(active) Wh, encrypted under the all-zero key (no KA key of the user is configured)",
            ["request_id": request.requestID.description, "device_id": target.id.description])
        let content = GBCS.ecs17bResponse(counter: counter, esme: target.id, user: user, sealed: sealed)
        return DUISResponse.deviceResponse(to: request, code: .success, at: now, content: .gbcsPayload(GBCS.response(header: header.response(at: now), content: content)))
    }

    /// gbcs.md §2.4: without the user's KA key, ECS17b is encrypted under an all-zero AES key.
    static let unknownUserKey = [UInt8](repeating: 0, count: 16)

    /// CV 2 of 2.2 (CS01a to an ESME, CS01b to a GSME) and 4.1.1 (ECS17b, ESME): the command as the
    /// DCC would send it over the WAN, user-originated with the RequestID counter. Nothing changes
    /// here: the device answers the user, who returns its answer with 8.13.
    func localCommandOfRequests(_ request: DUISRequest) -> (header: GBCS.Header, content: [UInt8])? {
        guard let target = engine.device(request.requestID.target) else { return nil }
        let user = request.requestID.originator, counter = request.requestID.counter
        func header(_ code: GBCS.MessageCode) -> GBCS.Header {
            GBCS.Header(cra: .command, counter: counter, originator: user, recipient: target.id, dateTime: nil, messageCode: code.rawValue)
        }
        switch (request.body, target.type) {
        case (.topUp(let utrn), .esme): return (header(.cs01a), GBCS.cs01aCommand(counter: counter, utrn: utrn))
        case (.topUp(let utrn), .gsme): return (header(.cs01b), GBCS.cs01bCommand(utrn: utrn))
        case (.readInstantaneousImportRegisters, .esme): return (header(.ecs17b), GBCS.ecs17bCommand(counter: counter, user: user, esme: target.id))
        default: return nil
        }
    }
}

