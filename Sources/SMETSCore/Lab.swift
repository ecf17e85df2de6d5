/// The lab as `devices/lab.json` describes it: premises, each a smart metering system.
public struct LabDefinition: Hashable, Sendable, Codable {
    public var name: String
    /// Which CPL regime the lab's dual-mode PPMIDs follow.
    public var cplRegime: CPLRegime
    public var premises: [PremisesDefinition]

    public init(name: String, cplRegime: CPLRegime, premises: [PremisesDefinition]) {
        self.name = name; self.cplRegime = cplRegime; self.premises = premises
    }
}

public struct PremisesDefinition: Hashable, Sendable, Codable {
    public var id: String
    public var region: CSPRegion
    public var devices: [DeviceDefinition]

    public init(id: String, region: CSPRegion, devices: [DeviceDefinition]) {
        self.id = id; self.region = region; self.devices = devices
    }
}

public struct DeviceDefinition: Hashable, Sendable, Codable {
    public var id: EUI64
    public var type: DeviceType
    public var model: String
    public var owner: String
    public var preNotified: SMETSVersion?
    public var status: InventoryStatus?
    /// A CHF's SMETS version.
    public var smetsVersion: SMETSVersion?
    /// Whether the device starts joined to its premises' hub.
    public var joined: Bool?

    public init(id: EUI64, type: DeviceType, model: String, owner: String, preNotified: SMETSVersion? = nil,
                status: InventoryStatus? = nil, smetsVersion: SMETSVersion? = nil, joined: Bool? = nil) {
        self.id = id; self.type = type; self.model = model; self.owner = owner; self.preNotified = preNotified
        self.status = status; self.smetsVersion = smetsVersion; self.joined = joined
    }
}

/// A problem found in the lab, naming where it is and how to fix it.
public struct LabProblem: Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

extension LabDefinition {
    /// Every semantic problem of the lab against the models it names.
    public func problems(models: [String: DeviceModel]) -> [LabProblem] {
        var problems: [LabProblem] = []
        var seenDevices: [EUI64: String] = [:]
        var seenPremises: Set<String> = []
        let known = models.keys.sorted().joined(separator: ", ")
        for (p, premises) in self.premises.enumerated() {
            let base = "premises[\(p)]"
            if premises.id.isEmpty { problems.append(LabProblem(path: "\(base).id", message: "must not be empty")) }
            if !seenPremises.insert(premises.id).inserted {
                problems.append(LabProblem(path: "\(base).id", message: "premises '\(premises.id)' appears twice; give each premises its own id"))
            }
            let hubs = premises.devices.filter { $0.type == .chf }
            if hubs.count != 1 {
                problems.append(LabProblem(path: "\(base).devices", message: "a premises needs exactly one CHF (Communications Hub), found \(hubs.count)"))
            }
            for (d, device) in premises.devices.enumerated() {
                let path = "\(base).devices[\(d)]"
                if let other = seenDevices[device.id] {
                    problems.append(LabProblem(path: "\(path).id", message: "\(device.id) is already used at \(other); device IDs are unique"))
                } else {
                    seenDevices[device.id] = path
                }
                guard let model = models[device.model] else {
                    problems.append(LabProblem(path: "\(path).model", message: "unknown model '\(device.model)'; add devices/models/\(device.model).json or use one of: \(known)"))
                    continue
                }
                if model.type != device.type {
                    problems.append(LabProblem(path: "\(path).type", message: "the device is a \(device.type) but model '\(model.key)' is a \(model.type)"))
                }
                if device.type == .chf && device.smetsVersion == nil {
                    problems.append(LabProblem(path: "\(path).smetsVersion", message: "a CHF needs its SMETS version: SMETS1 or SMETS2+"))
                }
                if device.type != .chf && device.smetsVersion != nil {
                    problems.append(LabProblem(path: "\(path).smetsVersion", message: "only a CHF has a SMETS version; for other devices use preNotified"))
                }
                if device.owner.isEmpty { problems.append(LabProblem(path: "\(path).owner", message: "name the owning MAP, e.g. MAP-ALPHA")) }
                // MP202 §2: the pre-notification of a PPMID must include the SMETS version.
                if device.type == .ppmid && device.preNotified == nil {
                    problems.append(LabProblem(path: "\(path).preNotified", message: "a PPMID's pre-notification must name its SMETS version (MP202 §2): add \"preNotified\": \"SMETS1\" or \"SMETS2+\""))
                }
            }
        }
        return problems
    }

    /// How a device joins a hub: the DCC decides (SMETSDCC's `DCCRules.join`); nil when it refuses.
    public typealias Join = @Sendable (_ device: Device, _ hub: Device, _ model: DeviceModel) -> JoinOutcome?

    /// The devices of a valid lab, in their initial state: joined where the lab says so, as `join` decides.
    public func initialDevices(models: [String: DeviceModel], join: Join) -> [Device] {
        var result: [Device] = []
        for premises in self.premises {
            var hub: Device?
            var members: [(Device, Bool)] = []
            for definition in premises.devices {
                guard let model = models[definition.model] else { continue }
                let preNotified = definition.preNotified ?? definition.smetsVersion ?? model.smetsVersions.last ?? .smets2
                var device = Device(id: definition.id, type: definition.type, premisesID: premises.id, modelKey: model.key,
                                    owner: definition.owner, preNotified: preNotified,
                                    status: definition.status ?? (definition.type == .chf ? .commissioned : .whitelisted),
                                    firmwareVersion: model.firmwareVersion, smetsVersion: definition.smetsVersion,
                                    region: premises.region)
                if device.type == .chf {
                    device.mode = SMETSMode(definition.smetsVersion ?? .smets2)
                    hub = device
                } else {
                    members.append((device, definition.joined ?? false))
                }
            }
            if let hub { result.append(hub) }
            for (device, joined) in members {
                if joined, let hub, let model = models[device.modelKey], let outcome = join(device, hub, model) {
                    result.append(outcome.device)
                } else {
                    result.append(device)
                }
            }
        }
        return result
    }
}

/// Premises made up in bulk for scale tests: a hub, an ESME, a GSME with its GPF, a PPMID and an IHD.
public enum LabGenerator {
    /// Generated device IDs live under this OUI-like prefix, apart from hand-written lab IDs.
    public static let idBase: UInt64 = 0x00DB_F000_0000_0000

    /// The models of one generated premises: a hub and its members, all of one SMETS version
    /// (only PPMIDs are dual-mode, so a SMETS1 premises needs SMETS1 meters and displays).
    public struct Members: Sendable {
        public var hub: DeviceModel, esme: DeviceModel, gsme: DeviceModel, gpf: DeviceModel, ppmid: DeviceModel, ihd: DeviceModel
        public init(hub: DeviceModel, esme: DeviceModel, gsme: DeviceModel, gpf: DeviceModel, ppmid: DeviceModel, ihd: DeviceModel) {
            self.hub = hub; self.esme = esme; self.gsme = gsme; self.gpf = gpf; self.ppmid = ppmid; self.ihd = ihd
        }
    }

    /// The models generated premises use: SMETS2+ ones, and SMETS1 ones when the lab has them.
    public struct Models: Sendable {
        public var smets2: Members
        public var smets1: Members?
        public init(smets2: Members, smets1: Members?) { self.smets2 = smets2; self.smets1 = smets1 }
    }

    public static func premisesID(_ index: Int) -> String { "G" + upperHex(index, width: 6) }

    /// The devices of generated premises number `index`, joined and commissioned as `join` decides.
    /// Odd premises get a SMETS1 hub (when the lab has SMETS1 models), so that the dual-mode PPMIDs
    /// are spread over both modes. Each device is pre-notified with its premises' version.
    public static func devices(index: Int, models: Models, owners: [String], join: LabDefinition.Join) -> [Device] {
        let base = idBase + UInt64(index) * 8
        let region = CSPRegion.allCases[index % 3]
        let premises = premisesID(index)
        let owner = owners.isEmpty ? "MAP-GEN" : owners[index % owners.count]
        let (hubVersion, set): (SMETSVersion, Members) = if index % 2 == 1, let smets1 = models.smets1 { (.smets1, smets1) } else { (.smets2, models.smets2) }
        let hub = Device(id: EUI64(base), type: .chf, premisesID: premises, modelKey: set.hub.key, owner: owner,
                         preNotified: hubVersion, status: .commissioned, mode: SMETSMode(hubVersion),
                         firmwareVersion: set.hub.firmwareVersion, smetsVersion: hubVersion, region: region)
        let members: [(UInt64, DeviceModel)] = [(1, set.esme), (2, set.gsme), (3, set.gpf), (4, set.ppmid), (5, set.ihd)]
        var result = [hub]
        for (offset, model) in members {
            let device = Device(id: EUI64(base + offset), type: model.type, premisesID: premises, modelKey: model.key, owner: owner,
                                preNotified: hubVersion, status: .whitelisted, firmwareVersion: model.firmwareVersion, region: region)
            result.append(join(device, hub, model)?.device ?? device)
        }
        return result
    }
}
