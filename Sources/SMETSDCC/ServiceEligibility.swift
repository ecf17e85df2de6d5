import SMETSCore

/// The service requests the DCC takes for a device, as far as eligibility goes.
public enum ServiceRequestKind: String, Sendable, CaseIterable {
    case join
    case unjoin
    case firmwareUpdate
    case firmwareActivate
    case changeOfTenancy
    case changeOfSupplier
    case topUp
    case readInventory
}

/// Why the DCC refuses a service request: a stable reason for the API and a sentence for people.
public struct DCCRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: String, Sendable, Hashable {
        /// The SMI does not hold the device in a status the request needs.
        case inventoryStatus = "inventory_status"
        /// MP202 interim failure: pre-notified and hub SMETS versions differ (MP202 §2).
        case interimMismatch = "interim_mismatch"
        /// MP202 Requirement 7 (MP202 regime only).
        case requirement7 = "mp202_requirement_7"
        /// The model has no OTA Upgrade cluster (IHDs, displays already in the field).
        case noOTA = "no_ota"
        /// The device type does not take this request.
        case deviceType = "device_type"
        /// The firmware identity is not on the CPL.
        case notOnCPL = "not_on_cpl"
    }

    public var reason: Reason
    public var message: String
    public init(_ reason: Reason, _ message: String) { self.reason = reason; self.message = message }
    public var description: String { message }
}

extension DCCRules {
    /// Whether the DCC lets `request` target `device` (joined to `hub`, if any). Nil: it may.
    /// The checks run in the DCC's order: inventory first, then the request's own rules.
    public func refusal(for request: ServiceRequestKind, device: Device, model: DeviceModel?, hub: Device?) -> DCCRefusal? {
        if request == .readInventory { return nil }
        if let mismatch = interimMismatch(device, hubVersion: hub?.smetsVersion) {
            return DCCRefusal(.interimMismatch, mismatch)
        }
        switch request {
        case .join:
            return HANMembership.joinableStatuses.contains(device.status) ? nil
                : DCCRefusal(.inventoryStatus, "\(device.id) is \(device.status) in the SMI; only a Whitelisted (or installed) device can join")
        case .unjoin, .changeOfTenancy, .changeOfSupplier, .topUp, .firmwareActivate:
            return [.commissioned, .suspended, .installedNotCommissioned].contains(device.status) ? nil
                : DCCRefusal(.inventoryStatus, "\(device.id) is \(device.status) in the SMI, not installed")
        case .firmwareUpdate:
            guard device.type.isDisplay else {
                return DCCRefusal(.deviceType, "a \(device.type) is not an OTA client of its hub; firmware goes to PPMIDs and IHDs")
            }
            if let model, !model.hasOTA {
                return DCCRefusal(.noOTA, "model \(model.key) has no OTA Upgrade cluster: its firmware cannot be upgraded over the air")
            }
            guard device.hub != nil, device.mode != .undetermined else {
                return DCCRefusal(.inventoryStatus, "\(device.id) has not joined a Communications Hub")
            }
            guard [.commissioned, .suspended].contains(device.status) else {
                return DCCRefusal(.inventoryStatus, "\(device.id) is \(device.status) in the SMI; firmware goes to commissioned (or suspended) devices")
            }
            if let model, let refusal = requirement7(device: device, model: model) {
                return DCCRefusal(.requirement7, refusal)
            }
            return nil
        case .readInventory:
            return nil
        }
    }

    /// MP202 Requirement 7, a DCC rule of the MP202 regime (MP202 §7): OTA firmware goes only to
    /// dual-mode PPMIDs enrolled in a SMETS2+ system. Under the interim solution it does not apply.
    public func requirement7(device: Device, model: DeviceModel) -> String? {
        guard regime == .mp202, model.isDualMode else { return nil }
        return MP202.otaRefusal(mode: device.mode)
    }

    /// The DCC's checks of an image before a firmware update reaches the hub: eligibility, Requirement
    /// 7 and the CPL (the new version, as the SMI would hold it, listed for the device's identity).
    /// The device's own checks (format, signature, ...) come after, on the device.
    public func firmwareChecks(fileVersion: FirmwareVersion, device: Device, model: DeviceModel, hub: Device?) -> [FirmwareCheck] {
        var checks: [FirmwareCheck] = []
        if let refusal = refusal(for: .firmwareUpdate, device: device, model: model, hub: hub), refusal.reason != .requirement7 {
            checks.append(FirmwareCheck("dccEligibility", .fail, refusal.message))
            return checks
        }
        checks.append(FirmwareCheck("dccEligibility", .pass, "\(device.id) is \(device.status) in the SMI, joined in \(device.mode)"))
        if !model.isDualMode {
            checks.append(FirmwareCheck("mp202Requirement7", .notApplicable, "\(model.key) is not a dual-mode PPMID"))
        } else if regime == .interim {
            checks.append(FirmwareCheck("mp202Requirement7", .notApplicable, "Requirement 7 belongs to the MP202 regime; this lab follows the interim solution"))
        } else if let refusal = requirement7(device: device, model: model) {
            checks.append(FirmwareCheck("mp202Requirement7", .fail, refusal))
        } else {
            checks.append(FirmwareCheck("mp202Requirement7", .pass, "a dual-mode PPMID enrolled in a SMETS2+ system may take OTA firmware"))
        }
        let identity = inventoryFirmware(model: model, firmware: fileVersion, mode: device.mode)
        let shown = identity == fileVersion ? fileVersion.hex : "\(fileVersion.hex) (held in the SMI as \(identity.hex))"
        let row = "\(model.manufacturer.code)/\(model.modelId) hardware \(model.hardwareVersion) in \(device.mode.name) (\(regime.rawValue) regime)"
        checks.append(cpl.lists(model: model, presented: identity, mode: device.mode, regime: regime)
            ? FirmwareCheck("cpl", .pass, "\(shown) is on the CPL for \(row)")
            : FirmwareCheck("cpl", .fail, "\(shown) is not on the CPL for \(row)"))
        return checks
    }
}
