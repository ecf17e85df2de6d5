import SMETSCore
import SMETSRPC

/// DP181 asset data: a MAP sees the devices it owns, a manufacturer the devices it made; never the
/// supplier, never consumer data.
extension ControlRouter {
    static func assetJSON(_ device: Device, engine: Engine) -> JSONValue {
        let model = engine.model(for: device)
        // The firmware version the DCC holds (the CPL's identity), and where that is a fictitious value
        // of the interim solution the real one it stands for, so a MAP can tell whether it is current.
        let held = engine.presentedFirmware(of: device)
        return [
            "deviceId": .string(device.id.description), "deviceType": .string(device.type.name),
            "manufacturer": .string(model?.manufacturer.name ?? ""), "manufacturerId": .string(model?.manufacturer.code ?? ""),
            "model": .string(model?.modelName ?? device.modelKey), "modelId": .string(model?.modelId ?? ""),
            "firmwareVersion": .string(held.hex),
            "realFirmwareVersion": held == device.firmwareVersion ? .null : .string(device.firmwareVersion.hex),
            "deviceStatus": .string(device.status.rawValue), "cspRegion": .string(device.region.rawValue),
        ]
    }

    /// The filter a role's view is confined to; admin sees all (and may narrow by owner or manufacturer).
    static func scope(_ role: Role, params: Params) throws -> Engine.DeviceFilter {
        var filter = Engine.DeviceFilter()
        switch role {
        case .map(let id): filter.owner = id
        case .manufacturer(let code): filter.manufacturerCode = code
        case .admin:
            filter.owner = try params.string("owner")
            filter.manufacturerCode = try params.string("manufacturerId")
        case .rig, .anonymous:
            throw JSONRPCError.application(.notAuthorised, message: "asset data is for the asset's owner (MAP) or its manufacturer")
        }
        return filter
    }

    static func assetMethods(engine: Engine) -> [ControlMethod] {
        [
            ControlMethod(name: "assets.list") { params, call in
                var filter = try scope(call.role, params: params)
                filter.type = try params.parsed("type", "a device type") { DeviceType(name: $0) }
                filter.model = try params.string("model")
                filter.status = try params.parsed("status", "an inventory status") { InventoryStatus(text: $0) }
                filter.region = try params.parsed("region", "a CSP region (North, Central, South)") { CSPRegion(text: $0) }
                filter.presentedFirmware = try params.parsed("firmwareVersion", "8 hex digits") { FirmwareVersion(hex: $0) }
                let limit = try params.int("limit") ?? 100
                guard (1...1000).contains(limit) else { throw JSONRPCError.invalidParams("limit must be 1...1000") }
                let page = engine.list(filter, after: try params.eui("cursor"), limit: Int(limit))
                return [
                    "assets": .array(page.devices.map { assetJSON($0, engine: engine) }),
                    "nextCursor": page.next.map { .string($0.description) } ?? .null,
                    "total": .int(Int64(page.total)),
                ]
            },
            ControlMethod(name: "assets.get") { params, call in
                let id = try params.requiredEUI("id")
                let filter = try scope(call.role, params: Params(nil))
                // Out of scope and missing look the same, so nobody learns of others' assets by probing.
                guard let device = engine.device(id), filter.matches(device, lab: engine.lab) else {
                    if call.role == .admin { throw DomainError(.deviceNotFound, "no device \(id)") }
                    throw JSONRPCError.application(.notAuthorised, message: "\(id) is not an asset of \(call.role)")
                }
                return assetJSON(device, engine: engine)
            },
            ControlMethod(name: "assets.transfer") { params, _ in
                let device = try engine.transferOwnership(try params.requiredEUI("id"), to: try params.requiredString("owner"))
                return ["deviceId": .string(device.id.description), "owner": .string(device.owner)]
            },
        ]
    }
}
