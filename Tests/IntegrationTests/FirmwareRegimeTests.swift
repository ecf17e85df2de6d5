import Foundation
import SMETSRPC
import Testing

/// MP202 around firmware: the gaining supplier, the interim regime's identities, the CPL.
@Suite(.serialized) struct FirmwareRegimeTests {
    func device(_ daemon: DaemonHarness, _ id: String) throws -> JSONValue { try daemon.call("devices.get", ["id": .string(id)]) }

    func push(_ daemon: DaemonHarness, _ image: [UInt8], to id: String) throws -> JSONValue {
        let result = try daemon.call("firmware.update", ["image": FirmwareTests.base64(image), "targets": [.string(id)]])
        return try #require(result["results"]?.arrayValue?.first)
    }

    @Test func afterAChangeOfSupplierTheGainingSupplierStillUpgrades() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        _ = try daemon.call("supplier.change", ["premises": "P0001", "provider": "0000ABCD", "name": "Gaining Energy"])
        let entry = try push(daemon, try FirmwareTests.build(), to: FirmwareTests.ppmidS2)
        #expect(entry["outcome"]?.stringValue == "activated", "\(entry)")
        #expect(try device(daemon, FirmwareTests.ppmidS2)["firmwareVersion"]?.stringValue == "01030000")
    }

    /// The SMETS1 identity of version 01030000 (its fictitious row 0F030000) is checked in the core's
    /// CPLTests; a device cannot reach a SMETS1 system after an upgrade here, since Requirement 7 bars the
    /// upgrade there and a device joins only its own premises' hub.
    @Test func underTheInterimRegimeEachIdentityFollowsItsCPLRow() throws {
        let lab = try DaemonHarness.copyOfLab()
        let labFile = lab + "/lab.json"
        let text = try String(contentsOfFile: labFile, encoding: .utf8).replacingOccurrences(of: "\"mp202\"", with: "\"interim\"")
        try text.write(toFile: labFile, atomically: true, encoding: .utf8)
        let daemon = try DaemonHarness(lab: lab).start()
        defer { daemon.stop() }
        // A PPMID that joins a SMETS2+ hub takes the image, then moves to the SMETS1 premises' hub.
        let spare = "00-DB-12-34-56-78-00-07"
        _ = try daemon.call("han.join", ["device": .string(spare), "hub": "00-DB-12-34-56-78-00-01"])
        let entry = try push(daemon, try FirmwareTests.build(), to: spare)
        #expect(entry["outcome"]?.stringValue == "activated", "\(entry)")
        let upgraded = try device(daemon, spare)
        #expect(upgraded["presentedFirmwareVersion"]?.stringValue == "01030000")

        // A PPMID in the SMETS1 system presents the fictitious row of the version it runs.
        let created = try daemon.call("devices.create", ["type": "PPMID", "premises": "P0002", "model": "acme-ppmid-dm", "preNotified": "SMETS2+"])
        let moved = try #require(created["id"]?.stringValue)
        _ = try daemon.call("han.join", ["device": .string(moved), "hub": "00-DB-12-34-56-79-00-01"])
        #expect(try device(daemon, moved)["presentedFirmwareVersion"]?.stringValue == "0F020300", "the fictitious row of 01020300")
        // The SMETS1-system PPMID of the lab presents the fictitious version of what it runs.
        #expect(try device(daemon, FirmwareTests.ppmidS1)["presentedFirmwareVersion"]?.stringValue == "0F020300")
        // Requirement 7 still refuses the SMETS1-system PPMID the upgrade, with the rule named.
        let refused = try daemon.call("firmware.update", ["image": FirmwareTests.base64(try FirmwareTests.build()), "targets": [.string(moved)]])
        let outcome = try #require(refused["results"]?.arrayValue?.first)
        #expect(outcome["outcome"]?.stringValue != "activated")
        #expect(outcome.serialized().contains("requirement 7"))
    }

    @Test func firmwareThatIsNotOnTheCPLSuspendsTheDevice() throws {
        let lab = try DaemonHarness.copyOfLab()
        // The lab's CPL loses the SMETS2+ row of 01030000: an activation to it leaves the device off the CPL.
        let cplFile = lab + "/cpl.csv"
        let cpl = try String(contentsOfFile: cplFile, encoding: .utf8)
        try cpl.replacingOccurrences(of: "1234,0000A001,1,01030000,SMETS2+,4.0,PPMID,\n", with: "")
            .write(toFile: cplFile, atomically: true, encoding: .utf8)
        let daemon = try DaemonHarness(lab: lab).start()
        defer { daemon.stop() }
        let entry = try push(daemon, try FirmwareTests.build(), to: FirmwareTests.ppmidS2)
        // Either the device refuses an image whose version the CPL does not list, or it is Suspended after.
        let status = try device(daemon, FirmwareTests.ppmidS2)["status"]?.stringValue
        #expect(entry["outcome"]?.stringValue == "rejected" || status == "Suspended", "\(entry) \(status ?? "-")")
        if entry["outcome"]?.stringValue == "rejected" {
            #expect(entry["checks"]?.arrayValue?.contains { $0["passed"]?.boolValue == false && $0.serialized().lowercased().contains("cpl") } == true)
            #expect(status == "Commissioned")
        }
    }
}
