import Foundation
import SMETSCore
import SMETSWire
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

    /// MP202 §2 and §7 under the interim solution: Requirement 7 does not apply, so a PPMID enrolled in
    /// a SMETS1 system takes OTA with the CPL's SMETS1 row (the fictitious version) as its identity; a
    /// PPMID pre-notified with the other version than its hub's is not commissioned and refused every
    /// service request until the supplier asks the DCC to correct the inventory.
    @Test func underTheInterimRegimeEachIdentityFollowsItsCPLRow() throws {
        let lab = try DaemonHarness.copyOfLab()
        let labFile = lab + "/lab.json"
        let text = try String(contentsOfFile: labFile, encoding: .utf8).replacingOccurrences(of: "\"mp202\"", with: "\"interim\"")
        try text.write(toFile: labFile, atomically: true, encoding: .utf8)
        let daemon = try DaemonHarness(lab: lab).start()
        defer { daemon.stop() }
        let s1Hub = "00-DB-12-34-56-79-00-01"

        // Pre-notified SMETS2+, joined to the SMETS1 hub: the SMI does not commission it.
        let created = try daemon.call("devices.create", ["type": "PPMID", "premises": "P0002", "model": "acme-ppmid-dm", "preNotified": "SMETS2+"])
        let moved = try #require(created["id"]?.stringValue)
        let joined = try daemon.call("han.join", ["device": .string(moved), "hub": .string(s1Hub)])
        #expect(joined["device"]?["status"]?.stringValue == "InstalledNotCommissioned")
        let refused = try push(daemon, try FirmwareTests.build(), to: moved)
        #expect(refused["outcome"]?.stringValue == "refused")
        #expect(refused["reason"]?.stringValue?.contains("cannot be the target of any service request") == true, "\(refused)")
        #expect(try daemon.callError("firmware.activate", ["device": .string(moved)])?.message.contains("interim") == true)

        // The manual SMI change: now commissioned, with the fictitious identity of what it runs.
        let corrected = try daemon.call("inventory.correct", ["device": .string(moved)])
        #expect(corrected["smetsVersion"]?.stringValue == "SMETS1")
        #expect(try device(daemon, moved)["status"]?.stringValue == "Commissioned")
        #expect(try device(daemon, moved)["presentedFirmwareVersion"]?.stringValue == "0F020300", "the fictitious row of 01020300")
        #expect(try daemon.callError("inventory.correct", ["device": .string(moved)])?.message.contains("nothing to correct") == true)

        // Requirement 7 belongs to the MP202 regime: under interim the SMETS1-system PPMID is upgraded.
        let entry = try push(daemon, try FirmwareTests.build(), to: moved)
        #expect(entry["outcome"]?.stringValue == "activated", "\(entry)")
        let upgraded = try device(daemon, moved)
        #expect(upgraded["firmwareVersion"]?.stringValue == "01030000", "the device runs the real version")
        #expect(upgraded["presentedFirmwareVersion"]?.stringValue == "0F030000", "the SMI holds the fictitious row of 01030000")
        #expect(upgraded["status"]?.stringValue == "Commissioned")
    }

    /// The device knows nothing of the CPL: a rig serving a correctly signed image of a version the
    /// CPL does not list gets Upgrade End SUCCESS over the HAN link, and the device runs it (the DCC
    /// marks it Suspended); the same version through firmware.update is refused by the DCC.
    @Test func aVersionOffTheCPLIsTheDCCsConcernNotTheDevices() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let image = try FirmwareTests.build(version: "01040000")
        let viaDCC = try push(daemon, image, to: FirmwareTests.ppmidS2)
        #expect(viaDCC["outcome"]?.stringValue == "refused")
        #expect(viaDCC["checks"]?.arrayValue?.contains { $0["name"]?.stringValue == "cpl" && $0["passed"]?.boolValue == false } == true, "\(viaDCC)")
        #expect(try device(daemon, FirmwareTests.ppmidS2)["firmwareVersion"]?.stringValue == "01020300")

        let rig = try HANRig(path: daemon.hanPath, device: try #require(EUI64(FirmwareTests.ppmidS2)))
        let end = try FirmwareTests.serve(image, with: rig)
        #expect(end.status == .success)
        #expect(end.fileVersion == 0x0104_0000)
        rig.send(UpgradeEndResponse(manufacturerCode: 0x1234, imageType: 0x0001, fileVersion: 0x0104_0000, currentTime: 0, upgradeTime: 0))
        var state: JSONValue = .null
        for _ in 0..<100 {
            state = try device(daemon, FirmwareTests.ppmidS2)
            if state["firmwareVersion"]?.stringValue == "01040000" { break }
            usleep(50_000)
        }
        #expect(state["firmwareVersion"]?.stringValue == "01040000", "the device runs what it activated")
        #expect(state["status"]?.stringValue == "Suspended", "the DCC marks an identity off the CPL")
        let fresh = try HANRig(path: daemon.hanPath, device: try #require(EUI64(FirmwareTests.ppmidS2)))
        #expect(fresh.welcome?.currentFileVersion == 0x0104_0000)
    }
}
