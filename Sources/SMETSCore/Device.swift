/// An emulated device as the inventory and the HAN see it.
public struct Device: Hashable, Sendable {
    public var id: EUI64
    public var type: DeviceType
    public var premisesID: String
    public var modelKey: String
    /// The Meter Asset Provider that owns the asset.
    public var owner: String
    /// The SMETS version the supplier pre-notified (PPMIDs and IHDs), or the meter's own.
    public var preNotified: SMETSVersion
    public var status: InventoryStatus
    public var mode: SMETSMode
    /// The Communications Hub the device has joined, if any.
    public var hub: EUI64?
    /// The firmware the device really runs (not the presented, possibly fictitious, version).
    public var firmwareVersion: FirmwareVersion
    /// A CHF's SMETS version, which decides the mode of the PPMIDs that join it.
    public var smetsVersion: SMETSVersion?
    public var region: CSPRegion

    public init(id: EUI64, type: DeviceType, premisesID: String, modelKey: String, owner: String,
                preNotified: SMETSVersion, status: InventoryStatus, mode: SMETSMode = .undetermined, hub: EUI64? = nil,
                firmwareVersion: FirmwareVersion, smetsVersion: SMETSVersion? = nil, region: CSPRegion) {
        self.id = id; self.type = type; self.premisesID = premisesID; self.modelKey = modelKey; self.owner = owner
        self.preNotified = preNotified; self.status = status; self.mode = mode; self.hub = hub
        self.firmwareVersion = firmwareVersion; self.smetsVersion = smetsVersion; self.region = region
    }
}

/// A rule of the domain said no. `reason` is stable (the API's `data.reason`); `message` is for people.
public struct DomainError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case deviceNotFound = "device_not_found"
        case deviceExists = "device_exists"
        case premisesNotFound = "premises_not_found"
        case modelNotFound = "model_not_found"
        case notAHub = "not_a_hub"
        case notJoinable = "not_joinable"
        case notJoined = "not_joined"
        case invalidState = "invalid_state"
        case clockInvalid = "clock_invalid"
        case limitExceeded = "limit_exceeded"
        case notAuthorised = "not_authorised"
    }

    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var reason: String { kind.rawValue }
    public var description: String { message }
}

/// What joining a Communications Hub does to a device.
public struct JoinOutcome: Hashable, Sendable {
    public var device: Device
    /// The inventory statuses the device passed through, in order.
    public var transitions: [InventoryStatus]
    public var presentedFirmware: FirmwareVersion

    public init(device: Device, transitions: [InventoryStatus], presentedFirmware: FirmwareVersion) {
        self.device = device; self.transitions = transitions; self.presentedFirmware = presentedFirmware
    }
}

/// Joining and leaving the HAN: pure decisions over values the daemon looks up.
public enum HANMembership {
    public static let joinableTypes: Set<DeviceType> = [.ppmid, .ihd, .esme, .gsme, .gpf, .hcalcs]
    public static let joinableStatuses: Set<InventoryStatus> = [.whitelisted, .installedNotCommissioned, .commissioned, .suspended]

    /// Decides a join. The hub's SMETS version decides the mode (MP202); the device moves
    /// Whitelisted -> InstalledNotCommissioned -> Commissioned when the identity it then presents is
    /// on the CPL, and to Suspended when it is not, as the inventory would mark it.
    public static func join(device: Device, hub: Device, model: DeviceModel, cpl: CPL, regime: CPLRegime) throws(DomainError) -> JoinOutcome {
        guard hub.type == .chf, let hubVersion = hub.smetsVersion else {
            throw DomainError(.notAHub, "\(hub.id) is a \(hub.type), not a Communications Hub (CHF)")
        }
        guard joinableTypes.contains(device.type) else {
            throw DomainError(.notJoinable, "a \(device.type) does not join a Communications Hub's HAN")
        }
        guard device.premisesID == hub.premisesID else {
            throw DomainError(.notJoinable, "\(device.id) is in premises \(device.premisesID), the hub \(hub.id) in \(hub.premisesID)")
        }
        guard joinableStatuses.contains(device.status) else {
            throw DomainError(.notJoinable, "\(device.id) is \(device.status); only a Whitelisted (or already installed) device can join")
        }
        let mode = MP202.resolvedMode(preNotified: device.preNotified, hub: hubVersion)
        guard let version = mode.version, model.smetsVersions.contains(version) else {
            throw DomainError(.notJoinable, "model \(model.key) cannot work in a \(hubVersion) system; it supports \(model.smetsVersions.map(\.rawValue).joined(separator: ", "))")
        }
        var joined = device
        joined.mode = mode
        joined.hub = hub.id
        let presented = cpl.presentedFirmware(model: model, firmware: device.firmwareVersion, mode: mode, regime: regime)
        var transitions: [InventoryStatus] = []
        if device.status == .whitelisted { transitions.append(.installedNotCommissioned) }
        let listed = cpl.lists(model: model, presented: presented, mode: mode, regime: regime)
        let final: InventoryStatus = listed ? .commissioned : .suspended
        if transitions.last ?? device.status != final { transitions.append(final) }
        joined.status = final
        return JoinOutcome(device: joined, transitions: transitions, presentedFirmware: presented)
    }

    /// Decides a leave: the device is off the HAN, its mode undetermined until it joins again.
    public static func leave(device: Device) throws(DomainError) -> Device {
        guard device.hub != nil else { throw DomainError(.notJoined, "\(device.id) has not joined a Communications Hub") }
        var left = device
        left.hub = nil
        left.mode = .undetermined
        if [.installedNotCommissioned, .commissioned, .suspended].contains(left.status) { left.status = .whitelisted }
        return left
    }

    /// The inventory status a device should hold after its firmware changed: Suspended when what it
    /// now presents is not on the CPL for its mode, Commissioned again when it is.
    public static func statusAfterFirmwareChange(device: Device, model: DeviceModel, cpl: CPL, regime: CPLRegime) -> InventoryStatus {
        guard device.hub != nil, [.commissioned, .suspended].contains(device.status) else { return device.status }
        let presented = cpl.presentedFirmware(model: model, firmware: device.firmwareVersion, mode: device.mode, regime: regime)
        return cpl.lists(model: model, presented: presented, mode: device.mode, regime: regime) ? .commissioned : .suspended
    }
}
