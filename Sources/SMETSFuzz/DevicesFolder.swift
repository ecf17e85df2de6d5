import Foundation
import SMETSConfig
import SMETSCore

extension FuzzTarget {
    /// `devices/lab.json`, decoded and validated against the shipped models as the loader does.
    public static let labJSON = FuzzTarget(
        name: "lab-json",
        summary: "lab.json through LabLoader.decode and LabDefinition.problems(models:); Codable round trip"
    ) { bytes in
        checkFile(LabDefinition.self, bytes, path: "lab.json") { lab in
            let problems = lab.problems(models: shippedModels)
            if problems.contains(where: { $0.message.isEmpty }) { return (["a problem without a message"], nil) }
            return (problems.map(\.message), nil)
        }
    }

    /// `devices/models/*.json`.
    public static let modelJSON = FuzzTarget(
        name: "model-json",
        summary: "a device model through LabLoader.decode and DeviceModel.problems(); Codable round trip"
    ) { bytes in
        checkFile(DeviceModel.self, bytes, path: "models/fuzz.json") { model in
            // Derived values a loaded model is asked for; none may trap.
            _ = (model.isDualMode, model.numericImageType, model.hasOTA, model.clearsSet, model.handlesChangeOfTenancy)
            return (model.problems(), nil)
        }
    }

    /// `devices/smetsd.json`.
    public static let settingsJSON = FuzzTarget(
        name: "settings-json",
        summary: "smetsd.json through LabLoader.decode and Settings.problems(); reload plan; Codable round trip"
    ) { bytes in
        checkFile(Settings.self, bytes, path: "smetsd.json") { settings in
            let plan = Settings.reloadPlan(from: Settings(), to: settings)
            let reloaded = Settings().reloaded(with: settings)
            if Settings.reloadPlan(from: reloaded, to: settings).applied != [] {
                return ([], "a reload left live keys unapplied: \(plan)")
            }
            _ = settings.socketModeBits
            return (settings.problems(), nil)
        }
    }

    /// `devices/access.json`.
    public static let accessJSON = FuzzTarget(
        name: "access-json",
        summary: "access.json through LabLoader.decode and AccessConfiguration.problems(); Role text round trip"
    ) { bytes in
        checkFile(AccessConfiguration.self, bytes, path: "access.json") { access in
            for text in access.roles.values {
                guard let role = Role(text: text) else { continue }
                if Role(text: role.description) != role { return ([], "Role(text: \(role.description)) is not \(role)") }
            }
            return (access.problems(), nil)
        }
    }

    /// `devices/cpl.csv`: read as UTF-8 (the loader refuses other bytes), then parsed.
    public static let cplCSV = FuzzTarget(
        name: "cpl-csv",
        summary: "CPL.parse(csv:); a parsed CPL written back as CSV parses to the same rows"
    ) { bytes in
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let cpl: CPL
        do throws(CPLParseError) {
            cpl = try CPL.parse(csv: text)
        } catch {
            return error.line >= 1 && !error.message.isEmpty ? nil : "an error without a line or a message: \(error)"
        }
        let written = ([CPL.header] + cpl.entries.map { entry in
            [entry.manufacturerId, entry.modelId, String(entry.hardwareVersion), entry.firmwareVersion.hex,
             entry.smetsVersion.rawValue, entry.gbcsVersion, entry.deviceType.name, entry.fictitiousFor?.hex ?? ""]
                .joined(separator: ",")
        }).joined(separator: "\n")
        do throws(CPLParseError) {
            let again = try CPL.parse(csv: written)
            return again == cpl ? nil : "the CPL written back parses to other rows"
        } catch {
            return "the CPL written back does not parse: \(error)"
        }
    }

    /// Decodes a JSON file of the devices folder as the loader does. A refusal must be one line
    /// naming the file; a value the loader accepts (no problems) must survive encode and decode.
    /// `validate` returns the value's problems and, separately, a broken property.
    private static func checkFile<T: Codable & Equatable>(
        _ type: T.Type, _ bytes: [UInt8], path: String, validate: (T) -> (problems: [String], failure: String?)
    ) -> String? {
        switch LabLoader.decode(T.self, data: Data(bytes), path: path) {
        case let .failure(problem):
            guard problem.text.hasPrefix(path + ": "), problem.text.count > path.count + 2 else {
                return "a refusal that does not name the file: \(problem.text)"
            }
            return nil
        case let .success(value):
            let (problems, failure) = validate(value)
            if let failure { return failure }
            if problems.contains(where: \.isEmpty) { return "a problem without text" }
            guard problems.isEmpty else { return nil }
            do {
                let encoded = try JSONEncoder().encode(value)
                switch LabLoader.decode(T.self, data: encoded, path: path) {
                case let .success(again) where again == value: return nil
                case let .success(again): return "decode(encode(\(value))) is \(again)"
                case let .failure(problem): return "the encoded value is refused: \(problem.text)"
                }
            } catch {
                return "an accepted value does not encode: \(error)"
            }
        }
    }

    /// The models shipped in `devices/models`, so that lab.json is checked against real ones.
    static let shippedModels: [String: DeviceModel] = {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("devices/models")
        var models: [String: DeviceModel] = [:]
        for file in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where file.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(file).path),
                  var model = try? JSONDecoder().decode(DeviceModel.self, from: data) else { continue }
            model.key = String(file.dropLast(5))
            models[model.key] = model
        }
        return models
    }()
}
