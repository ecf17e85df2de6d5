import Foundation
import SMETSCore
import SMETSRPC
import SMETSWire

extension ControlRouter {
    static func firmwareMethods(engine: Engine) -> [ControlMethod] {
        [
            // The emulated hub pushes an image to devices over the HAN (the OTA handshake, in the daemon).
            ControlMethod(name: "firmware.update") { params, _ in
                let file = try imageBytes(params, engine: engine)
                var targets = try params.stringList("targets")?.map { text -> EUI64 in
                    guard let id = EUI64(text) else { throw JSONRPCError.invalidParams("targets: '\(text)' is not an EUI-64") }
                    return id
                } ?? []
                if let device = try params.eui("device") { targets.append(device) }
                guard !targets.isEmpty else { throw JSONRPCError.invalidParams("give targets (device IDs) or device") }
                guard targets.count <= 1000 else { throw JSONRPCError.invalidParams("at most 1000 targets at a time") }
                let activation = try activationTime(params)
                let image = try engine.readImage(file)
                let (hash, results) = try engine.updateFirmware(file: file, targets: targets, activation: activation)
                return [
                    "hash": .string(hash), "fileVersion": .string(upperHex(image.header.fileVersion, width: 8)),
                    "manufacturerCode": .string(upperHex(image.header.manufacturerCode, width: 4)),
                    "imageType": .string(upperHex(image.header.imageType, width: 4)), "imageSize": .int(Int64(file.count)),
                    "results": .array(results.map(resultJSON)),
                ]
            },
            // Activate Firmware (DUIS CS06): outcome 0 success, 1 no image held, 2 hash mismatch, 3 activation failure.
            ControlMethod(name: "firmware.activate") { params, _ in
                let id = try params.requiredEUI("device")
                let hash = try params.string("hash")
                if let hash, hash.count != 64 || !hash.allSatisfy(\.isHexDigit) {
                    throw JSONRPCError.invalidParams("hash must be the SHA-256 of the Manufacturer Image: 64 hex digits")
                }
                let report = try engine.activateFirmware(id, hash: hash, at: try params.time("time") ?? params.time("executionTime"))
                var result: [String: JSONValue] = [
                    "device": .string(id.description), "outcome": .int(Int64(report.outcome.rawValue)),
                    "outcomeName": .string(report.outcome.name), "reason": .string(report.reason),
                    "scheduledAt": report.scheduledAt.map { .string($0.rfc3339) } ?? .null,
                ]
                if let device = report.device {
                    result["firmwareVersion"] = .string(device.firmwareVersion.hex)
                    result["presentedFirmwareVersion"] = .string(engine.presentedFirmware(of: device).hex)
                    result["status"] = .string(device.status.rawValue)
                }
                return .object(result)
            },
            ControlMethod(name: "firmware.version") { params, _ in
                firmwareStatusJSON(try engine.firmwareStatus(try params.requiredEUI("device")))
            },
            // The image store: every Manufacturer Image kept, once each, by SHA-256.
            ControlMethod(name: "firmware.images") { _, _ in
                let images = try engine.store.read { try $0.firmwareImages() }
                return ["images": .array(images.map { ["hash": .string($0.hash), "size": .int(Int64($0.size))] })]
            },
            // The firmware rules for an image and a device, without a transfer.
            ControlMethod(name: "firmware.check") { params, _ in
                let file = try imageBytes(params, engine: engine)
                let layers = try engine.checkFirmware(file: file, device: try params.requiredEUI("device"))
                let dcc = layers.dcc.map { checkJSON($0, layer: "dcc") }, device = layers.device.checks.map { checkJSON($0, layer: "device") }
                return ["accepted": .bool(layers.accepted), "checks": .array(dcc + device), "dcc": .array(dcc), "device": .array(device)]
            },
        ]
    }

    /// The image of a request: `image` (base64) or `path` (a file the daemon can read).
    static func imageBytes(_ params: Params, engine: Engine) throws -> [UInt8] {
        let limit = engine.lab.settings.maxImageBytes
        if let encoded = try params.string("image") {
            guard encoded.utf8.count <= (limit / 3 + 1) * 4 + 4 else {
                throw DomainError(.limitExceeded, "the image is over the limit of \(limit) bytes (maxImageBytes)")
            }
            guard let data = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters) else {
                throw JSONRPCError.invalidParams("image must be the file in base64")
            }
            return Array(data)
        }
        guard let path = try params.string("path") else { throw JSONRPCError.invalidParams("give image (base64) or path (a file smetsd can read)") }
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue
        guard let size else { throw DomainError(.invalidState, "smetsd cannot read \(path)") }
        guard size <= limit else { throw DomainError(.limitExceeded, "\(path) is \(size) bytes, over the limit of \(limit) (maxImageBytes)") }
        guard let data = FileManager.default.contents(atPath: path) else { throw DomainError(.invalidState, "smetsd cannot read \(path)") }
        return Array(data)
    }

    /// `activate`: now (default), later, or an RFC 3339 time; `executionTime` is the same as a time.
    static func activationTime(_ params: Params) throws -> FirmwareActivationTime {
        if let time = try params.time("executionTime") { return .at(time) }
        switch try params.string("activate") {
        case nil, "now"?: return .now
        case "later"?: return .later
        case let text?:
            guard let time = Timestamp(rfc3339: text) else {
                throw JSONRPCError.invalidParams("activate must be now, later or an RFC 3339 time such as 2026-11-23T06:05:20Z")
            }
            return .at(time)
        }
    }

    static func checkJSON(_ check: FirmwareCheck, layer: String? = nil) -> JSONValue {
        var object: [String: JSONValue] = ["name": .string(check.name), "outcome": .string(check.outcome.rawValue), "passed": .bool(check.passed),
                                           "reason": .string(check.reason)]
        if let layer { object["layer"] = .string(layer) }
        return .object(object)
    }

    static func resultJSON(_ result: FirmwareUpdateResult) -> JSONValue {
        [
            "device": .string(result.device.description), "outcome": .string(result.outcome), "reason": .string(result.reason),
            "checks": .array(result.checks.map { checkJSON($0) }), "activateAt": result.activateAt.map { .string($0.rfc3339) } ?? .null,
            "firmwareVersion": result.firmwareVersion.map { .string($0.hex) } ?? .null,
        ]
    }
}

/// The two layers of checks an image meets on its way to a device: the DCC's, then the device's.
public struct LayeredFirmwareVerdict: Sendable {
    /// Eligibility, MP202 Requirement 7 and the CPL: what the DCC decides before the hub sends anything.
    public var dcc: [FirmwareCheck]
    /// What the device itself checks: format, size, manufacturer, image type, hardware, destination,
    /// signature, downgrade.
    public var device: FirmwareVerdict
    public var accepted: Bool { dcc.allSatisfy(\.passed) && device.accepted }
}

extension Engine {
    /// The firmware rules for `file` and device `id`, in both layers, without a transfer.
    public func checkFirmware(file: [UInt8], device id: EUI64) throws -> LayeredFirmwareVerdict {
        let device = try requireDevice(id)
        let (model, lab, hub) = state.withLock { state in (state.lab.models[device.modelKey], state.lab, device.hub.flatMap { state.devices[$0] }) }
        guard let model else { throw DomainError(.modelNotFound, "no model \(device.modelKey)") }
        let (verdict, image) = Self.check(file: file, device: device, model: model, lab: lab)
        let dcc = image.map { lab.dcc.firmwareChecks(fileVersion: FirmwareVersion($0.header.fileVersion), device: device, model: model, hub: hub) } ?? []
        return LayeredFirmwareVerdict(dcc: dcc, device: verdict)
    }
}

extension ControlRouter {
    /// `firmware.version`'s result.
    static func firmwareStatusJSON(_ status: Engine.FirmwareStatus) -> JSONValue {
        let device = status.device, firmware = status.firmware
        var object: [String: JSONValue] = [
            "device": .string(device.id.description), "firmwareVersion": .string(device.firmwareVersion.hex),
            "presentedFirmwareVersion": .string(status.presented.hex), "mode": .string(device.mode.name), "status": .string(device.status.rawValue),
            "imageUpgradeStatus": .int(Int64(firmware.imageUpgradeStatus)),
            "imageUpgradeStatusName": .string(firmware.client.imageUpgradeStatus.name),
            "fileOffset": .int(Int64(firmware.fileOffset)),
        ]
        if let model = status.model {
            object["manufacturerCode"] = .string(model.manufacturer.code)
            object["imageType"] = .string(model.otaImageType)
        }
        object["held"] = firmware.client.held.map { held -> JSONValue in
            [
                "hash": .string(held.hash), "fileVersion": .string(held.fileVersion.hex),
                "status": .string(held.status.name), "activateAt": held.activateAt.map { .string($0.rfc3339) } ?? .null,
            ]
        } ?? .null
        object["download"] = firmware.client.download.map { download -> JSONValue in
            [
                "server": .string(download.server.description), "fileVersion": .string(upperHex(download.image.fileVersion, width: 8)),
                "fileOffset": .int(Int64(download.fileOffset)), "imageSize": .int(Int64(download.image.imageSize)),
            ]
        } ?? .null
        return .object(object)
    }
}
