import Foundation
import Testing
import SMETSCore
@testable import SMETSStore

/// A state directory of its own for one test, removed when the test is done with it.
final class TemporaryState {
    let directory: URL
    private var openStore: StateStore?

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("smetsd-store-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        openStore = try StateStore(directory: directory.path)
    }

    var store: StateStore {
        guard let openStore else { preconditionFailure("the store is closed") }
        return openStore
    }

    /// Every regular file in the state directory, with its bytes.
    func files() throws -> [(name: String, bytes: [UInt8])] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map { name in
            (name: name, bytes: [UInt8](try Data(contentsOf: directory.appendingPathComponent(name))))
        }
    }

    deinit {
        openStore = nil  // closes the database before its files go
        try? FileManager.default.removeItem(at: directory)
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs anywhere in these bytes.
    func contains(bytes needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        let first = needle[0]
        var index = 0
        while index <= count - needle.count {
            if self[index] == first && self[index..<(index + needle.count)].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }
}

func eui(_ text: String) -> EUI64 {
    guard let id = EUI64(text) else { preconditionFailure("bad EUI-64 in test: \(text)") }
    return id
}

/// A PPMID with every field set away from its default.
func sampleDevice(_ id: String = "00-DB-12-34-56-78-00-05", hub: EUI64? = eui("00-DB-12-34-56-78-00-01")) -> Device {
    Device(id: eui(id), type: .ppmid, premisesID: "P0001", modelKey: "acme-ppmid-dm", owner: "MAP-ALPHA",
           preNotified: .smets1, status: .commissioned, mode: .smets2, hub: hub,
           firmwareVersion: FirmwareVersion(0x0102_0300), smetsVersion: nil, region: .central)
}
