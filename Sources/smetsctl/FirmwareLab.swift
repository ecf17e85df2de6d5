import ArgumentParser
import Crypto
import Foundation
import SMETSCore
import SMETSWire

/// The parts of a devices folder that `smetsctl firmware check` and `build` read, without the
/// daemon: the models, the CPL and its regime, the image size limit.
struct FirmwareLab {
    var directory: String
    var models: [String: DeviceModel]
    var cpl: CPL
    var regime: CPLRegime
    var maxImageBytes: Int

    static let defaultMaxImageBytes = 16 << 20

    /// `--lab`, else `$SMETSD_LAB`, else `devices` in the working directory.
    static func directory(_ flag: String?) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let lab = ProcessInfo.processInfo.environment["SMETSD_LAB"], !lab.isEmpty { return lab }
        return "devices"
    }

    static func load(_ flag: String?) throws -> FirmwareLab {
        let directory = Self.directory(flag)
        let modelsPath = directory + "/models"
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: modelsPath) else {
            throw ValidationError("no devices folder at \(directory) (cannot list \(modelsPath)); pass --lab DIR")
        }
        var models: [String: DeviceModel] = [:]
        for file in files.sorted() where file.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: modelsPath + "/" + file),
                  var model = try? JSONDecoder().decode(DeviceModel.self, from: data) else {
                throw ValidationError("\(modelsPath)/\(file) is not a device model; run smetsd to see what is wrong with it")
            }
            model.key = String(file.dropLast(5))
            models[model.key] = model
        }
        var cpl = CPL(entries: [])
        if let text = try? String(contentsOfFile: directory + "/cpl.csv", encoding: .utf8) {
            do { cpl = try CPL.parse(csv: text) } catch { throw ValidationError("\(directory)/cpl.csv: \(error)") }
        }
        var regime = CPLRegime.mp202
        if let data = FileManager.default.contents(atPath: directory + "/lab.json"),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let text = object["cplRegime"] as? String, let value = CPLRegime(rawValue: text) {
            regime = value
        }
        var limit = defaultMaxImageBytes
        if let data = FileManager.default.contents(atPath: directory + "/smetsd.json"),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let value = object["maxImageBytes"] as? Int {
            limit = value
        }
        return FirmwareLab(directory: directory, models: models, cpl: cpl, regime: regime, maxImageBytes: limit)
    }

    func model(_ key: String) throws -> DeviceModel {
        guard let model = models[key] else {
            throw ValidationError("no model '\(key)' in \(directory)/models; known: \(models.keys.sorted().joined(separator: ", "))")
        }
        return model
    }

    /// The model's signing key, read from its PEM file under the devices folder.
    func signingKey(for model: DeviceModel) -> SigningKey {
        guard let relative = model.signingKey, !relative.isEmpty else { return .none }
        let path = relative.hasPrefix("/") ? relative : directory + "/" + relative
        guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else { return .unavailable("cannot read \(path)") }
        do {
            return .loaded(PublicKeyVerifier(rawKey: Array(try P256.Signing.PublicKey(pemRepresentation: pem).rawRepresentation)))
        } catch {
            return .unavailable("\(path) is not a P-256 public key in PEM")
        }
    }
}

/// ECDSA P-256 over SHA-256, raw r||s signatures.
struct PublicKeyVerifier: SignatureVerifier {
    let rawKey: [UInt8]
    func isValidSignature(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        guard let key = try? P256.Signing.PublicKey(rawRepresentation: rawKey),
              let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
        return key.isValidSignature(parsed, for: message)
    }
}

enum FirmwareFiles {
    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
        return Array(data)
    }

    /// Writes `bytes` to `path` through a temporary file in the same folder, renamed into place.
    static func write(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        do {
            try Data(bytes).write(to: url, options: .atomic)
        } catch {
            throw ValidationError("cannot write \(path): \(error.localizedDescription)")
        }
    }

    static func sha256(_ bytes: [UInt8]) -> String { lowerHex(SHA256.hash(data: bytes)) }
}
