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

    /// The devices of a valid lab, in their initial state: joined where the lab says so.
    public func initialDevices(models: [String: DeviceModel], cpl: CPL) -> [Device] {
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
                if joined, let hub, let model = models[device.modelKey],
                   let outcome = try? HANMembership.join(device: device, hub: hub, model: model, cpl: cpl, regime: cplRegime) {
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

    public struct Models: Sendable {
        public var hub: DeviceModel, esme: DeviceModel, gsme: DeviceModel, gpf: DeviceModel, ppmid: DeviceModel, ihd: DeviceModel
        public init(hub: DeviceModel, esme: DeviceModel, gsme: DeviceModel, gpf: DeviceModel, ppmid: DeviceModel, ihd: DeviceModel) {
            self.hub = hub; self.esme = esme; self.gsme = gsme; self.gpf = gpf; self.ppmid = ppmid; self.ihd = ihd
        }
    }

    public static func premisesID(_ index: Int) -> String { "G" + upperHex(index, width: 6) }

    /// The devices of generated premises number `index`, joined and commissioned. Odd premises get a
    /// SMETS1 hub, so that the dual-mode PPMIDs are spread over both modes.
    public static func devices(index: Int, models: Models, cpl: CPL, regime: CPLRegime, owners: [String]) -> [Device] {
        let base = idBase + UInt64(index) * 8
        let region = CSPRegion.allCases[index % 3]
        let premises = premisesID(index)
        let owner = owners.isEmpty ? "MAP-GEN" : owners[index % owners.count]
        let hubVersion: SMETSVersion = index % 2 == 0 ? .smets2 : .smets1
        var hub = Device(id: EUI64(base), type: .chf, premisesID: premises, modelKey: models.hub.key, owner: owner,
                         preNotified: hubVersion, status: .commissioned, mode: SMETSMode(hubVersion),
                         firmwareVersion: models.hub.firmwareVersion, smetsVersion: hubVersion, region: region)
        hub.hub = nil
        let members: [(UInt64, DeviceModel)] = [(1, models.esme), (2, models.gsme), (3, models.gpf), (4, models.ppmid), (5, models.ihd)]
        var result = [hub]
        for (offset, model) in members {
            let device = Device(id: EUI64(base + offset), type: model.type, premisesID: premises, modelKey: model.key, owner: owner,
                                preNotified: .smets2, status: .whitelisted, firmwareVersion: model.firmwareVersion, region: region)
            if let outcome = try? HANMembership.join(device: device, hub: hub, model: model, cpl: cpl, regime: regime) {
                result.append(outcome.device)
            } else {
                result.append(device)
            }
        }
        return result
    }
}
