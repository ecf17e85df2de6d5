import Foundation
import SMETSClient
import SMETSRPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Start, crash, restart, bad labs: what happens around the daemon's life.
@Suite(.serialized) struct LifecycleTests {
    @Test func acknowledgedChangesSurviveKill9AndTheStaleSocketIsReplaced() throws {
        let daemon = try DaemonHarness().start()
        let joined = try daemon.call("han.join", ["device": "00-DB-12-34-56-78-00-07", "hub": "00-DB-12-34-56-78-00-01"])
        #expect(joined["device"]?["status"]?.stringValue == "Commissioned")
        _ = try daemon.call("clock.advance", ["hours": 5])
        daemon.kill9()
        // The socket file of the dead daemon is still there; nobody answers on it.
        #expect(FileManager.default.fileExists(atPath: daemon.controlPath))

        let again = try DaemonHarness(lab: daemon.labDirectory, state: daemon.stateDirectory, runtime: daemon.runtimeDirectory).start()
        defer { again.stop() }
        let device = try again.call("devices.get", ["id": "00-DB-12-34-56-78-00-07"])
        #expect(device["status"]?.stringValue == "Commissioned")
        #expect(device["mode"]?.stringValue == "SMETS2+")
        #expect((try again.call("clock.get")["offsetSeconds"]?.doubleValue ?? 0) >= 5 * 3600)
    }

    @Test func aLiveSocketIsNeverTakenOver() throws {
        let first = try DaemonHarness().start()
        defer { first.stop() }
        let second = DaemonHarness(lab: first.labDirectory, runtime: first.runtimeDirectory)
        try second.start(waitReady: false)
        second.process.waitUntilExit()
        #expect(second.process.terminationStatus != 0)
        #expect(second.logText.contains("in use by a running daemon"))
        #expect(try first.call("daemon.status")["ready"]?.boolValue == true, "the first daemon still serves")
    }

    @Test func aBrokenLabIsRefusedWithTheFileTheKeyAndTheFix() throws {
        let lab = try DaemonHarness.copyOfLab()
        let labFile = lab + "/lab.json"
        var text = try String(contentsOfFile: labFile, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"acme-esme\"", with: "\"acme-esmee\"")
        try text.write(toFile: labFile, atomically: true, encoding: .utf8)
        try "manufacturer_id,model_id\n".write(toFile: lab + "/cpl.csv", atomically: true, encoding: .utf8)
        try #"{"maxLinksPerDevice": 0}"#.write(toFile: lab + "/smetsd.json", atomically: true, encoding: .utf8)
        try #"{"roles": {"uid:5": "boss"}}"#.write(toFile: lab + "/access.json", atomically: true, encoding: .utf8)
        let daemon = DaemonHarness(lab: lab)
        try daemon.start(waitReady: false)
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 78, "EX_CONFIG")
        let log = daemon.logText
        #expect(log.contains("lab.json: premises[0].devices[1].model: unknown model 'acme-esmee'"))
        #expect(log.contains("add devices/models/acme-esmee.json"))
        #expect(log.contains("cpl.csv: line 1: the first row must be the header"))
        #expect(log.contains("smetsd.json: maxLinksPerDevice: 0 is outside 1...1024"))
        #expect(log.contains("access.json: roles.uid:5: 'boss' is not a role"))
    }

    @Test func sighupReloadsTheLabAndKeepsConnections() throws {
        let lab = try DaemonHarness.copyOfLab()
        let daemon = try DaemonHarness(lab: lab).start()
        defer { daemon.stop() }
        let client = try daemon.client()
        defer { client.close() }
        #expect(try client.call("daemon.status")["devices"]?.intValue == 15)
        let labFile = lab + "/lab.json"
        var definition = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: labFile))) as? [String: Any])
        var premises = try #require(definition["premises"] as? [[String: Any]])
        var devices = try #require(premises[0]["devices"] as? [[String: Any]])
        devices.append(["id": "00-DB-12-34-56-78-00-08", "type": "IHD", "model": "brightview-ihd", "owner": "MAP-ALPHA"])
        premises[0]["devices"] = devices
        definition["premises"] = premises
        try JSONSerialization.data(withJSONObject: definition).write(to: URL(fileURLWithPath: labFile))
        kill(daemon.process.processIdentifier, SIGHUP)
        var count: Int64 = 0
        for _ in 0..<100 {
            count = try client.call("daemon.status")["devices"]?.intValue ?? 0
            if count == 16 { break }
            usleep(50_000)
        }
        #expect(count == 16, "the same connection sees the reloaded lab")
    }

    @Test func smetsctlTellsWhenTheDaemonIsNotRunning() throws {
        let result = try runCommand(DaemonHarness.binary("smetsctl"), ["--socket", "/tmp/smetsd-none/control.sock", "status"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("not running"))
    }

    @Test func smetsctlSpeaksJSONAndTables() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let ctl = DaemonHarness.binary("smetsctl")
        let json = try runCommand(ctl, ["--socket", daemon.controlPath, "status", "--json"])
        #expect(json.status == 0)
        #expect(try JSONValue.parse(json.stdout)["devices"]?.intValue == 15)
        let table = try runCommand(ctl, ["--socket", daemon.controlPath, "devices", "list", "--type", "PPMID"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("00-DB-12-34-56-78-00-05"))
        let refused = try runCommand(ctl, ["--socket", daemon.controlPath, "devices", "show", "00-DB-12-34-56-78-99-99"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("device_not_found"))
    }
}
