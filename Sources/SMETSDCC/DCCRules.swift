import SMETSCore

/// What the DCC decides, and only the DCC: the Smart Metering Inventory's view of a device (its
/// status, the SMETS version and firmware identity it holds), the CPL under the lab's regime, MP202
/// Requirement 7, and whether a service request may target a device. A device never sees any of it:
/// real hardware knows neither the CPL nor the system it is enrolled in. Pure values, no I/O.
public struct DCCRules: Sendable {
    public var cpl: CPL
    public var regime: CPLRegime

    public init(cpl: CPL, regime: CPLRegime) { self.cpl = cpl; self.regime = regime }

    // MARK: the inventory's view

    /// The SMETS version the SMI records for `device` when it has joined a hub of `hubVersion`.
    ///
    /// Under MP202 the DSP takes the hub's version for a PPMID (MP202 §3, the versioning table).
    /// Under the interim solution the SMI keeps what the supplier pre-notified (§2, "Tactical interim
    /// solution"). Every other device type has one version (SEC Appendix Z 3.13).
    public func inventoryVersion(of device: Device, hubVersion: SMETSVersion?) -> SMETSVersion {
        guard device.type == .ppmid, regime == .mp202, let hubVersion else { return device.preNotified }
        return MP202.resolvedMode(preNotified: device.preNotified, hub: hubVersion).version ?? device.preNotified
    }

    /// The firmware version the SMI holds for a device of `model` running `firmware` in `mode`: the
    /// real one, except a dual-mode PPMID in SMETS1 under the interim regime, which the CPL's SMETS1
    /// row names by a fictitious version (MP202 §2). The device itself always reports what it runs.
    public func inventoryFirmware(model: DeviceModel, firmware: FirmwareVersion, mode: SMETSMode) -> FirmwareVersion {
        cpl.presentedFirmware(model: model, firmware: firmware, mode: mode, regime: regime)
    }

    /// Why the SMI could not commission a PPMID joined to a hub of the other SMETS version than the
    /// one pre-notified, under the interim solution (MP202 §2 "What is the issue?": "the PPMID cannot
    /// be the target of any Service Requests" until a manual SMI change). Nil when there is no such
    /// failure (MP202 regime, another device type, a matching hub, or not joined).
    public func interimMismatch(_ device: Device, hubVersion: SMETSVersion?) -> String? {
        guard regime == .interim, device.type == .ppmid, let hubVersion, device.hub != nil, device.preNotified != hubVersion else { return nil }
        return "MP202 interim solution: \(device.id) was pre-notified \(device.preNotified) but joined a \(hubVersion) Communications Hub, "
            + "so the SMI did not commission it and it cannot be the target of any service request; ask the DCC to correct the inventory "
            + "(smetsctl inventory correct \(device.id))"
    }

    // MARK: joining

    /// The DCC's side of a join: the mode the hub gives the device (MP202 for dual-mode PPMIDs, a
    /// refusal for another device type of the other SMETS version) and the SMI statuses that follow:
    /// Whitelisted -> InstalledNotCommissioned -> Commissioned when the identity the SMI then holds is
    /// on the CPL, Suspended when it is not, and InstalledNotCommissioned under the interim failure.
    public func join(device: Device, hub: Device, model: DeviceModel) throws(DomainError) -> JoinOutcome {
        guard hub.type == .chf, let hubVersion = hub.smetsVersion else {
            throw DomainError(.notAHub, "\(hub.id) is a \(hub.type), not a Communications Hub (CHF)")
        }
        guard HANMembership.joinableTypes.contains(device.type) else {
            throw DomainError(.notJoinable, "a \(device.type) does not join a Communications Hub's HAN")
        }
        guard device.premisesID == hub.premisesID else {
            throw DomainError(.notJoinable, "\(device.id) is in premises \(device.premisesID), the hub \(hub.id) in \(hub.premisesID)")
        }
        guard HANMembership.joinableStatuses.contains(device.status) else {
            throw DomainError(.notJoinable, "\(device.id) is \(device.status); only a Whitelisted (or already installed) device can join")
        }
        let mode: SMETSMode
        if model.isDualMode {
            // The hub decides (MP202 table); the device is identical in either system.
            mode = MP202.resolvedMode(preNotified: device.preNotified, hub: hubVersion)
        } else {
            // SEC Appendix Z 3.13: only PPMIDs are dual-mode.
            guard device.preNotified == hubVersion, model.smetsVersions.contains(hubVersion) else {
                throw DomainError(.notJoinable, "\(device.id) is a \(device.preNotified) \(device.type) (model \(model.key) supports "
                    + "\(model.smetsVersions.map(\.rawValue).joined(separator: ", "))) and cannot join a \(hubVersion) Communications Hub: "
                    + "only PPMIDs are dual-mode (SEC Appendix Z 3.13)")
            }
            mode = SMETSMode(hubVersion)
        }
        guard let version = mode.version, model.smetsVersions.contains(version) else {
            throw DomainError(.notJoinable, "model \(model.key) cannot work in a \(hubVersion) system; it supports \(model.smetsVersions.map(\.rawValue).joined(separator: ", "))")
        }
        var joined = device
        joined.mode = mode
        joined.hub = hub.id
        var transitions: [InventoryStatus] = []
        if device.status == .whitelisted { transitions.append(.installedNotCommissioned) }
        let final: InventoryStatus
        if interimMismatch(joined, hubVersion: hubVersion) != nil {
            final = .installedNotCommissioned
        } else {
            final = listed(joined, model: model) ? .commissioned : .suspended
        }
        if transitions.last ?? device.status != final { transitions.append(final) }
        joined.status = final
        return JoinOutcome(device: joined, transitions: transitions, presentedFirmware: inventoryFirmware(model: model, firmware: device.firmwareVersion, mode: mode))
    }

    /// The manual SMI change a supplier asks the DCC for after the interim failure: the inventory
    /// takes the hub's SMETS version and the device is commissioned (or suspended, off the CPL).
    public func correctInventory(device: Device, hub: Device, model: DeviceModel) throws(DomainError) -> JoinOutcome {
        guard let hubVersion = hub.smetsVersion, device.hub == hub.id else {
            throw DomainError(.notJoined, "\(device.id) has not joined a Communications Hub; there is nothing to correct")
        }
        guard interimMismatch(device, hubVersion: hubVersion) != nil else {
            throw DomainError(.invalidState, "the SMI already records \(device.id) as \(inventoryVersion(of: device, hubVersion: hubVersion)), the version of its hub; nothing to correct")
        }
        var corrected = device
        corrected.preNotified = hubVersion
        let final: InventoryStatus = listed(corrected, model: model) ? .commissioned : .suspended
        corrected.status = final
        return JoinOutcome(device: corrected, transitions: [final], presentedFirmware: inventoryFirmware(model: model, firmware: device.firmwareVersion, mode: corrected.mode))
    }

    /// Whether the identity the SMI holds for a joined device is on the CPL.
    func listed(_ device: Device, model: DeviceModel) -> Bool {
        let presented = inventoryFirmware(model: model, firmware: device.firmwareVersion, mode: device.mode)
        return cpl.lists(model: model, presented: presented, mode: device.mode, regime: regime)
    }

    /// The SMI status of a device after its firmware changed: Suspended when the identity it now has
    /// is not on the CPL, Commissioned again when it is. The device runs the firmware either way.
    public func statusAfterFirmwareChange(_ device: Device, model: DeviceModel, hubVersion: SMETSVersion?) -> InventoryStatus {
        guard device.hub != nil, [.commissioned, .suspended].contains(device.status) else { return device.status }
        if interimMismatch(device, hubVersion: hubVersion) != nil { return device.status }
        return listed(device, model: model) ? .commissioned : .suspended
    }

    /// `join` as the lab's initial devices and the generator take it: nil where the DCC refuses.
    public var joiner: LabDefinition.Join {
        let rules = self
        return { device, hub, model in try? rules.join(device: device, hub: hub, model: model) }
    }
}
