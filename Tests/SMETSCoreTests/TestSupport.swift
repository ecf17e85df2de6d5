import Foundation
import Testing
@testable import SMETSCore

/// The package's root directory, found from this file's path (Tests/SMETSCoreTests/TestSupport.swift).
let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The shipped `devices/` folder.
let devicesDirectory: URL = packageRoot.appendingPathComponent("devices")

/// The shipped models, keyed as the daemon keys them: by file name without `.json`.
func shippedModels() throws -> [String: DeviceModel] {
    let folder = devicesDirectory.appendingPathComponent("models")
    let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }
    var models: [String: DeviceModel] = [:]
    for file in files {
        var model = try JSONDecoder().decode(DeviceModel.self, from: Data(contentsOf: folder.appendingPathComponent(file)))
        model.key = String(file.dropLast(".json".count))
        models[model.key] = model
    }
    return models
}

func shippedModel(_ key: String) throws -> DeviceModel {
    try #require(try shippedModels()[key], "devices/models/\(key).json is missing")
}

func shippedCPL() throws -> CPL {
    try CPL.parse(csv: String(contentsOf: devicesDirectory.appendingPathComponent("cpl.csv"), encoding: .utf8))
}

func shippedLab() throws -> LabDefinition {
    try JSONDecoder().decode(LabDefinition.self, from: Data(contentsOf: devicesDirectory.appendingPathComponent("lab.json")))
}

func eui(_ text: String) -> EUI64 {
    guard let id = EUI64(text) else { preconditionFailure("bad EUI-64 in test: \(text)") }
    return id
}

func firmware(_ hex: String) -> FirmwareVersion {
    guard let version = FirmwareVersion(hex: hex) else { preconditionFailure("bad firmware version in test: \(hex)") }
    return version
}

func time(_ text: String) -> Timestamp {
    guard let timestamp = Timestamp(rfc3339: text) else { preconditionFailure("bad RFC 3339 time in test: \(text)") }
    return timestamp
}

/// A Communications Hub of `version` in premises `premises`.
func hub(_ version: SMETSVersion, id: String = "00-DB-00-00-00-00-00-01", premises: String = "P1") -> Device {
    Device(id: eui(id), type: .chf, premisesID: premises, modelKey: version == .smets1 ? "northgrid-chf-s1" : "northgrid-chf-s2",
           owner: "MAP-TEST", preNotified: version, status: .commissioned, mode: SMETSMode(version),
           firmwareVersion: firmware(version == .smets1 ? "01000400" : "02000100"), smetsVersion: version, region: .north)
}

/// A Whitelisted device of `model` in premises `premises`, not joined.
func member(_ model: DeviceModel, preNotified: SMETSVersion, id: String = "00-DB-00-00-00-00-00-05", premises: String = "P1",
            status: InventoryStatus = .whitelisted, firmwareVersion: FirmwareVersion? = nil) -> Device {
    Device(id: eui(id), type: model.type, premisesID: premises, modelKey: model.key, owner: "MAP-TEST", preNotified: preNotified,
           status: status, firmwareVersion: firmwareVersion ?? model.firmwareVersion, region: .north)
}

/// SplitMix64: a deterministic generator, so that a failing random case reproduces.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
