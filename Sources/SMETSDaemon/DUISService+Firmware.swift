import Foundation
import Logging
import SMETSCore
import SMETSDUIS

/// 11.1 / 11.4 after the acknowledgement: the hub distributes the image over the emulated HAN
/// (the engine's `firmware.update` transfer, whose per-device outcome is the OTA client's last
/// step), and the DCC tells the user what came of it (duis.md §6.1, gbcs.md §5.3):
/// - each device the image reached: the CHF's CCS08 (0128) as a DeviceAlertMessage, 8F8A success
///   or 8F89 failure with its result code;
/// - a PPMID that activated by itself: its CS09 (012B, 8F8B) goes to the ACB, and the DCC sends
///   the user a PPMIDAlert DCC alert built from it;
/// - the devices the image could not reach (no hub, or the hub could not offer it): one
///   FirmwareDistributionFailure DCC alert naming them.
/// The devices do what hardware does; which alert the user gets is decided here.
extension DUISService {
    /// DCCAlertCodes of the two DCC alerts. duis.md names the alerts but not their N-codes; these
    /// are smetsd's choice (docs/duis.md, "Not done").
    static let firmwareDistributionFailureCode = "N12"
    static let ppmidAlertCode = "N42"

    func distributeFirmware(_ request: DUISRequest, image: [UInt8], version: FirmwareVersion, targets: [EUI64]) {
        let results: [FirmwareUpdateResult]
        do {
            results = try engine.updateFirmware(file: image, targets: targets, activation: .now).results
        } catch {
            log(.warning, "duis.firmware", "the firmware distribution failed", ["request_id": request.requestID.description, "error": "\(error)"])
            // Nothing was offered: no device was reached.
            results = targets.map { FirmwareUpdateResult(device: $0, outcome: "refused", reason: "\(error)", checks: [], activateAt: nil, firmwareVersion: nil) }
        }
        var unreached: [EUI64] = []
        for result in results {
            guard let transfer = Self.transferResult(result) else { unreached.append(result.device); continue }
            post(request, ccs08(request, device: result.device, version: version, result: transfer), detail: "CCS08 \(transfer) for \(result.device): \(result.reason)")
            let device = engine.device(result.device)
            if device?.type == .ppmid, transfer == .success, result.outcome == "activated" || result.activationFailed {
                post(request, ppmidActivation(request, device: result.device, version: version, success: !result.activationFailed),
                     detail: "PPMIDAlert for \(result.device)")
            }
        }
        if !unreached.isEmpty {
            let alert = DUISResponse.dccAlert(schemaVersion: request.schemaVersion, dcc: settings.dcc, user: request.requestID.originator, counter: dccCounter(),
                                              at: engine.now(), alertCode: Self.firmwareDistributionFailureCode,
                                              alert: .firmwareDistributionFailure(updateRequest: request.requestID, meters: unreached))
            post(request, alert, detail: "FirmwareDistributionFailure for \(unreached.map(\.description).joined(separator: ","))")
        }
    }

    /// CCS08's result for an outcome of the hub's transfer; nil when the image never reached the device.
    static func transferResult(_ result: FirmwareUpdateResult) -> GBCS.TransferResult? {
        switch result.outcome {
        case "refused": nil
        case "activated", "scheduled", "waiting": .success
        case "failed" where result.activationFailed: .success  // transferred; the activation is CS09's (PPMID) or 11.3's business
        case "rejected": result.checks.contains { $0.name == "hardwareVersion" && !$0.passed } ? .hardwareVersionMismatch : .imageDiscarded
        default: .transferFailure  // aborted, or the transfer did not finish
        }
    }

    /// The CHF's CCS08 to the ACB, forwarded to the user as a DeviceAlertMessage
    /// (ResponseID `<CHF>:<user>:<alert counter>`).
    func ccs08(_ request: DUISRequest, device id: EUI64, version: FirmwareVersion, result: GBCS.TransferResult) -> DUISResponse {
        let now = engine.now()
        let hub = engine.device(id)?.hub ?? id
        let counter = alertCounter(hub)
        let content = GBCS.ccs08Alert(time: now, device: id, version: version, result: result)
        let payload = GBCS.criticalAlert(.ccs08Alert, device: hub, recipient: settings.dcc, counter: counter, content: content)
        return DUISResponse.deviceAlert(schemaVersion: request.schemaVersion, device: hub, user: request.requestID.originator, counter: counter,
                                        at: now, alertCode: result == .success ? "8F8A" : "8F89", payload: payload)
    }

    /// The PPMID's CS09 goes to the ACB (logged with its bytes, `event=duis.alert`); the user gets
    /// the DCC's PPMIDAlert built from it.
    func ppmidActivation(_ request: DUISRequest, device id: EUI64, version: FirmwareVersion, success: Bool) -> DUISResponse {
        let now = engine.now()
        let counter = alertCounter(id)
        let cs09 = GBCS.criticalAlert(.cs09Alert, device: id, recipient: settings.dcc, counter: counter,
                                      content: GBCS.cs09Alert(time: now, version: version, success: success))
        log(.info, "duis.alert", "CS09 8F8B from \(id) to the ACB", ["device_id": id.description, "alert_code": "8F8B", "gbcs": Hex.encode(cs09)])
        return DUISResponse.dccAlert(schemaVersion: request.schemaVersion, dcc: settings.dcc, user: request.requestID.originator, counter: dccCounter(), at: now,
                                     alertCode: Self.ppmidAlertCode,
                                     alert: .ppmidFirmwareUpgrade(device: id, deviceAlertCode: "8F8B", timestamp: now, version: version, success: success))
    }

    func post(_ request: DUISRequest, _ response: DUISResponse, detail: String) {
        exchange(request, code: response.code, message: detail)
        outbox.post(response, originator: request.requestID.originator)
    }
}
