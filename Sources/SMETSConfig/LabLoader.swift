import Foundation
import SMETSCore

/// The devices folder, loaded and validated: models, the lab and the CPL.
public struct LabSnapshot: Sendable {
    public var directory: String
    public var definition: LabDefinition
    public var models: [String: DeviceModel]
    public var cpl: CPL
    public var settings: Settings
    public var access: AccessConfiguration
    /// The DUIS trust store and the DCC's signing key, read from the files `settings.duis` names.
    public var duisCredentials = DUISCredentials()
    public var regime: CPLRegime { definition.cplRegime }
}

/// A devices folder that cannot be used, with every problem found (file, key or line, and the fix).
public struct LabLoadError: Error, CustomStringConvertible, Sendable {
    public var problems: [String]
    public var description: String {
        "the devices folder has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n" + problems.map { "  - " + $0 }.joined(separator: "\n")
    }
}

public enum LabLoader {
    /// Reads `models/*.json`, `lab.json`, `cpl.csv` and the optional `smetsd.json` from `directory`.
    public static func load(directory: String) throws(LabLoadError) -> LabSnapshot {
        var problems: [String] = []
        let base = URL(fileURLWithPath: directory)
        let modelsDir = base.appendingPathComponent("models")
        var models: [String: DeviceModel] = [:]
        let modelFiles = ((try? FileManager.default.contentsOfDirectory(atPath: modelsDir.path)) ?? [])
            .filter { $0.hasSuffix(".json") }.sorted()
        if modelFiles.isEmpty { problems.append("\(modelsDir.path): no device models (*.json) found") }
        for file in modelFiles {
            let path = modelsDir.appendingPathComponent(file).path
            switch decode(DeviceModel.self, path: path) {
            case .success(var model):
                model.key = String(file.dropLast(5))
                problems += model.problems().map { "\(path): \($0)" }
                models[model.key] = model
            case .failure(let problem):
                problems.append(problem.text)
            }
        }

        let labPath = base.appendingPathComponent("lab.json").path
        var definition = LabDefinition(name: "", cplRegime: .mp202, premises: [])
        switch decode(LabDefinition.self, path: labPath) {
        case .success(let lab):
            definition = lab
            problems += lab.problems(models: models).map { "\(labPath): \($0)" }
        case .failure(let problem):
            problems.append(problem.text)
        }

        let cplPath = base.appendingPathComponent("cpl.csv").path
        var cpl = CPL(entries: [])
        if let text = try? String(contentsOfFile: cplPath, encoding: .utf8) {
            do { cpl = try CPL.parse(csv: text) } catch { problems.append("\(cplPath): \(error)") }
        } else {
            problems.append("\(cplPath): cannot read the Central Products List; create it with the header \(CPL.header)")
        }

        let settings = optional("smetsd.json", in: base, default: Settings(), problems: &problems) { $0.problems() }
        let access = optional("access.json", in: base, default: AccessConfiguration(), problems: &problems) { $0.problems() }
        var credentialProblems: [String] = []
        let credentials = DUISCredentials.load(settings.duis, base: base, problems: &credentialProblems)
        problems += credentialProblems.map { "\(base.appendingPathComponent("smetsd.json").path): \($0)" }

        guard problems.isEmpty else { throw LabLoadError(problems: problems) }
        return LabSnapshot(directory: base.path, definition: definition, models: models, cpl: cpl, settings: settings, access: access,
                           duisCredentials: credentials)
    }

    /// An optional JSON file of the devices folder: `fallback` when absent, else the decoded value,
    /// with its decoding error or its own `check` problems added to `problems`.
    static func optional<T: Decodable>(_ name: String, in base: URL, default fallback: T, problems: inout [String],
                                       check: (T) -> [String]) -> T {
        let path = base.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: path) else { return fallback }
        switch decode(T.self, path: path) {
        case .success(let loaded):
            problems += check(loaded).map { "\(path): \($0)" }
            return loaded
        case .failure(let problem):
            problems.append(problem.text)
            return fallback
        }
    }

    /// Decodes a JSON file, turning Foundation's errors into one line naming the file, the key path
    /// (or line and column for syntax errors) and what to write instead.
    static func decode<T: Decodable>(_ type: T.Type, path: String) -> Result<T, LabFileProblem> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(LabFileProblem(text: "\(path): cannot read the file"))
        }
        return decode(type, data: data, path: path)
    }

    /// Decodes the bytes of a devices-folder JSON file as ``decode(_:path:)`` does once it has read
    /// them; the file is named only in the problem's text.
    public static func decode<T: Decodable>(_ type: T.Type, data: Data, path: String) -> Result<T, LabFileProblem> {
        do {
            return .success(try JSONDecoder().decode(T.self, from: data))
        } catch let error as DecodingError {
            return .failure(LabFileProblem(text: "\(path): \(describe(error))"))
        } catch {
            return .failure(LabFileProblem(text: "\(path): \(error)"))
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func keyPath(_ path: [any CodingKey]) -> String {
            let text = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.hasPrefix(".") ? String(text.dropFirst()) : (text.isEmpty ? "(top level)" : text)
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "the top level" : keyPath(context.codingPath)
            return "\(parent): missing key '\(key.stringValue)'; add it"
        case .typeMismatch(let type, let context):
            return "\(keyPath(context.codingPath)): expected \(readable(type)); \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "\(keyPath(context.codingPath)): expected \(readable(type)), found null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                return "not valid JSON: \(underlying ?? context.debugDescription)"
            }
            return "\(keyPath(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    static func readable(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is UInt16.Type, is UInt8.Type, is Double.Type: "a number"
        default: "\(type)"
        }
    }
}

/// One devices-folder file that cannot be used: a line naming the file, the key and the fix.
public struct LabFileProblem: Error, Sendable {
    public var text: String
}
