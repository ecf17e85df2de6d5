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
        case storageUnavailable = "storage_unavailable"
        case pathRefused = "path_refused"
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

/// Leaving the HAN, and what may join it: pure decisions over values the daemon looks up. Whether a
/// join is allowed and what the inventory makes of it is the DCC's decision (SMETSDCC's `DCCRules.join`).
public enum HANMembership {
    public static let joinableTypes: Set<DeviceType> = [.ppmid, .ihd, .esme, .gsme, .gpf, .hcalcs]
    public static let joinableStatuses: Set<InventoryStatus> = [.whitelisted, .installedNotCommissioned, .commissioned, .suspended]

    /// Decides a leave: the device is off the HAN, its mode undetermined until it joins again.
    public static func leave(device: Device) throws(DomainError) -> Device {
        guard device.hub != nil else { throw DomainError(.notJoined, "\(device.id) has not joined a Communications Hub") }
        var left = device
        left.hub = nil
        left.mode = .undetermined
        if [.installedNotCommissioned, .commissioned, .suspended].contains(left.status) { left.status = .whitelisted }
        return left
    }
}
