import Foundation
import SMETSCore
import SMETSRPC
import SMETSWire

extension ControlRouter {
    static func firmwareMethods(engine: Engine, uploads: FirmwareUploads) -> [ControlMethod] {
        [
            // The emulated hub pushes an image to devices over the HAN (the OTA handshake, in the daemon).
            ControlMethod(name: "firmware.update") { params, call in
                let file = try imageBytes(params, engine: engine, uploads: uploads, call: call)
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
            ControlMethod(name: "firmware.check") { params, call in
                let file = try imageBytes(params, engine: engine, uploads: uploads, call: call)
                let layers = try engine.checkFirmware(file: file, device: try params.requiredEUI("device"))
                let dcc = layers.dcc.map { checkJSON($0, layer: "dcc") }, device = layers.device.checks.map { checkJSON($0, layer: "device") }
                return ["accepted": .bool(layers.accepted), "checks": .array(dcc + device), "dcc": .array(dcc), "device": .array(device)]
            },
        ]
    }

    /// The image of a request: `image` (base64), `upload` (a committed `firmware.upload` of this
    /// connection) or `path` (a file inside `imagesDirectory`, never elsewhere).
    static func imageBytes(_ params: Params, engine: Engine, uploads: FirmwareUploads, call: CallContext) throws -> [UInt8] {
        let settings = engine.lab.settings
        let limit = settings.maxImageBytes
        if let encoded = try params.string("image") {
            guard encoded.utf8.count <= (limit / 3 + 1) * 4 + 4 else {
                throw DomainError(.limitExceeded, "the image is over the limit of \(limit) bytes (maxImageBytes)")
            }
            guard let data = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters) else {
                throw JSONRPCError.invalidParams("image must be the file in base64")
            }
            return Array(data)
        }
        if let id = try params.string("upload") {
            return try uploads.image(owner: ObjectIdentifier(call.connection), id: id)
        }
        guard let path = try params.string("path") else {
            throw JSONRPCError.invalidParams("give image (base64), upload (firmware.upload.*) or path (a file inside imagesDirectory)")
        }
        let bytes = try ImagesFolder.read(name: path, settings: settings, labDirectory: engine.lab.directory)
        // The parser's sentences quote header fields; for a file the caller did not send, say only why.
        do {
            _ = try OTAImage(parsing: bytes, options: .init(maxImageBytes: limit))
        } catch {
            throw DomainError(.invalidState, "path '\(path)' is not a readable OTA image (\(error.reason))")
        }
        return bytes
    }

    /// Chunked upload of an image too large for one request line.
    static func uploadMethods(engine: Engine, uploads: FirmwareUploads) -> [ControlMethod] {
        [
            ControlMethod(name: "firmware.upload.begin") { params, call in
                guard let size = try params.int("size") else { throw JSONRPCError.invalidParams("missing size (the image's length in bytes)") }
                let settings = engine.lab.settings
                let id = try uploads.begin(owner: ObjectIdentifier(call.connection), size: Int(clamping: size), settings: settings)
                // Chunks whose base64 fits a request line with room for the envelope.
                let chunkBytes = max(1024, (settings.maxControlLineBytes - 512) / 4 * 3 / 1024 * 1024)
                return ["upload": .string(id), "size": .int(size), "chunkBytes": .int(Int64(chunkBytes))]
            },
            ControlMethod(name: "firmware.upload.chunk") { params, call in
                let id = try params.requiredString("upload")
                guard let offset = try params.int("offset") else { throw JSONRPCError.invalidParams("missing offset") }
                guard let data = Data(base64Encoded: try params.requiredString("data")) else {
                    throw JSONRPCError.invalidParams("data must be base64")
                }
                let received = try uploads.chunk(owner: ObjectIdentifier(call.connection), id: id, offset: Int(clamping: offset), data: Array(data))
                return ["upload": .string(id), "received": .int(Int64(received))]
            },
            ControlMethod(name: "firmware.upload.commit") { params, call in
                let id = try params.requiredString("upload")
                let bytes = try uploads.commit(owner: ObjectIdentifier(call.connection), id: id)
                let digest = Engine.imageHash(bytes)  // of the whole file here
                if let expected = try params.string("sha256"), expected.lowercased() != digest {
                    uploads.discard(owner: ObjectIdentifier(call.connection), id: id)
                    throw DomainError(.invalidState, "upload \(id) has SHA-256 \(digest), not \(expected.lowercased()); it is discarded")
                }
                return ["upload": .string(id), "size": .int(Int64(bytes.count)), "sha256": .string(digest)]
            },
            ControlMethod(name: "firmware.upload.discard") { params, call in
                let id = try params.requiredString("upload")
                return ["upload": .string(id), "discarded": .bool(uploads.discard(owner: ObjectIdentifier(call.connection), id: id))]
            },
        ]
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
        let (model, lab, hub) = state.read { state in (state.lab.models[device.modelKey], state.lab, device.hub.flatMap { state.devices[$0] }) }
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
