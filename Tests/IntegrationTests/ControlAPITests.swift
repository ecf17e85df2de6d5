import Foundation
import SMETSClient
import SMETSRPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The control API against the real daemon over its real socket.
@Suite(.serialized) struct ControlAPITests {
    let ppmidS2 = "00-DB-12-34-56-78-00-05"  // dual-mode, pre-notified SMETS1, on the SMETS2+ hub
    let spareS2 = "00-DB-12-34-56-78-00-07"  // dual-mode, Whitelisted, not joined
    let hubS2 = "00-DB-12-34-56-78-00-01"
    let hubS1 = "00-DB-12-34-56-79-00-01"
    let ppmidS1 = "00-DB-12-34-56-79-00-05"  // dual-mode, pre-notified SMETS2+, on the SMETS1 hub

    @Test func statusAndCleanStop() throws {
        let daemon = try DaemonHarness().start()
        let status = try daemon.call("daemon.status")
        #expect(status["state"]?.stringValue == "ready")
        #expect(status["devices"]?.intValue == 15)
        #expect(status["premises"]?.intValue == 2)
        #expect(status["pid"]?.intValue == Int64(daemon.process.processIdentifier))
        #expect(daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.controlPath), "a clean stop removes its socket")
    }

    @Test func mp202DecidesTheModeFromTheHub() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        // Pre-notified SMETS1 on a SMETS2+ hub: SMETS2+. Pre-notified SMETS2+ on a SMETS1 hub: SMETS1.
        #expect(try daemon.call("devices.get", ["id": .string(ppmidS2)])["mode"]?.stringValue == "SMETS2+")
        #expect(try daemon.call("devices.get", ["id": .string(ppmidS1)])["mode"]?.stringValue == "SMETS1")

        let joined = try daemon.call("han.join", ["device": .string(spareS2), "hub": .string(hubS2)])
        #expect(joined["mode"]?.stringValue == "SMETS2+")
        #expect(joined["transitions"] == ["InstalledNotCommissioned", "Commissioned"])
        #expect(joined["device"]?["status"]?.stringValue == "Commissioned")

        let left = try daemon.call("han.leave", ["device": .string(spareS2)])
        #expect(left["device"]?["mode"]?.stringValue == "undetermined")
        #expect(left["device"]?["status"]?.stringValue == "Whitelisted")

        // A hub in another premises is refused with a stable reason.
        let refused = try daemon.callError("han.join", ["device": .string(spareS2), "hub": .string(hubS1)])
        #expect(refused?.code == 1006)
        #expect(refused?.reason == "not_joinable")

        // Leaving the SMETS1 hub and joining again keeps SMETS1; the MP202 table is the hub's call.
        _ = try daemon.call("han.leave", ["device": .string(ppmidS1)])
        #expect(try daemon.call("han.join", ["device": .string(ppmidS1), "hub": .string(hubS1)])["mode"]?.stringValue == "SMETS1")
    }

    @Test func modeFlipsWhenTheDeviceMovesToAHubOfTheOtherVersion() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        // Move the SMETS1-system PPMID's premises hub: create a dual-mode PPMID in P0002 and join it there,
        // then check a PPMID created in P0001 and joined there is SMETS2+.
        let unnamed = try #require(try daemon.callError("devices.create", ["type": "PPMID", "premises": "P0002", "model": "acme-ppmid-dm"]))
        #expect(unnamed.message.contains("preNotified"), "MP202 §2: the pre-notification names the SMETS version")
        let created = try daemon.call("devices.create", ["type": "PPMID", "premises": "P0002", "model": "acme-ppmid-dm", "preNotified": "SMETS2+"])
        let id = try #require(created["id"]?.stringValue)
        #expect(created["status"]?.stringValue == "Whitelisted")
        #expect(try daemon.call("han.join", ["device": .string(id), "hub": .string(hubS1)])["mode"]?.stringValue == "SMETS1")
        _ = try daemon.call("han.leave", ["device": .string(id)])
        #expect(try daemon.call("devices.get", ["id": .string(id)])["mode"]?.stringValue == "undetermined")
        _ = try daemon.call("devices.remove", ["id": .string(id)])
        #expect(try daemon.callError("devices.get", ["id": .string(id)])?.code == 1001)
    }

    @Test func interimRegimePresentsTheFictitiousSMETS1Version() throws {
        let lab = try DaemonHarness.copyOfLab()
        let labFile = lab + "/lab.json"
        let text = try String(contentsOfFile: labFile, encoding: .utf8).replacingOccurrences(of: "\"mp202\"", with: "\"interim\"")
        try text.write(toFile: labFile, atomically: true, encoding: .utf8)
        let daemon = try DaemonHarness(lab: lab).start()
        defer { daemon.stop() }
        let s1 = try daemon.call("devices.get", ["id": .string(ppmidS1)])
        #expect(s1["firmwareVersion"]?.stringValue == "01020300")
        #expect(s1["presentedFirmwareVersion"]?.stringValue == "0F020300")
        // Pre-notified SMETS2+ on the SMETS1 hub: under the interim solution the SMI did not commission
        // it (MP202 §2) until the supplier asks for the manual change.
        #expect(s1["status"]?.stringValue == "InstalledNotCommissioned")
        _ = try daemon.call("inventory.correct", ["device": .string(ppmidS1)])
        #expect(try daemon.call("devices.get", ["id": .string(ppmidS1)])["status"]?.stringValue == "Commissioned")
        let s2 = try daemon.call("devices.get", ["id": .string(ppmidS2)])
        #expect(s2["presentedFirmwareVersion"]?.stringValue == "01020300")
        // DP181: the asset data names the version the DCC holds and the real one it stands for.
        let asset = try daemon.call("assets.get", ["id": .string(ppmidS1)])
        #expect(asset["firmwareVersion"]?.stringValue == "0F020300")
        #expect(asset["realFirmwareVersion"]?.stringValue == "01020300")
        #expect(try daemon.call("assets.get", ["id": .string(ppmidS2)])["realFirmwareVersion"]?.isNull == true)
    }

    @Test func listingPagesThroughEveryDevice() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let generated = try daemon.call("lab.generate", ["premises": 50])
        #expect(generated["devices"]?.intValue == 300)
        var seen: [String] = []
        var cursor: JSONValue = .null
        repeat {
            let page = try daemon.call("devices.list", ["limit": 37, "cursor": cursor])
            #expect(page["total"]?.intValue == 315)
            seen += (page["devices"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            cursor = page["nextCursor"] ?? .null
        } while !cursor.isNull
        #expect(seen.count == 315)
        #expect(Set(seen).count == 315)
        #expect(seen == seen.sorted())
        let ppmids = try daemon.call("devices.list", ["type": "PPMID", "limit": 1000])
        #expect(ppmids["total"]?.intValue == Int64(54))
        #expect(try daemon.callError("devices.list", ["type": "TOASTER"])?.code == -32602)
        #expect(try daemon.callError("lab.generate", ["premises": 0])?.reason == "limit_exceeded")
    }

    @Test func protocolErrorsUseTheJSONRPCCodes() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        #expect(try daemon.callError("no.such.method")?.code == -32601)
        #expect(try daemon.callError("devices.get", ["id": "not-an-eui"])?.code == -32602)
        #expect(try daemon.callError("devices.get", ["id": "00-DB-12-34-56-78-99-99"])?.reason == "device_not_found")
        let raw = try RawLineClient(path: daemon.controlPath)
        #expect(try raw.exchange("this is not json")["error"]?["code"]?.intValue == -32700)
        #expect(try raw.exchange(#"{"jsonrpc":"1.0","id":1,"method":"daemon.status"}"#)["error"]?["code"]?.intValue == -32600)
        #expect(try raw.exchange(#"[{"jsonrpc":"2.0","id":1,"method":"daemon.status"}]"#)["error"]?["code"]?.intValue == -32600)
        // The connection survives bad lines and still answers.
        #expect(try raw.exchange(#"{"jsonrpc":"2.0","id":9,"method":"daemon.status"}"#)["result"]?["ready"]?.boolValue == true)
    }

    @Test func clockSurvivesARestartAndDrivesDailyHistory() throws {
        let daemon = try DaemonHarness().start()
        let before = try daemon.call("devices.get", ["id": .string(ppmidS2)])["data"]?["consumptionDays"]?.intValue ?? -1
        let advanced = try daemon.call("clock.advance", ["days": 3])
        #expect(advanced["tracksRealTime"]?.boolValue == false)
        let after = try daemon.call("devices.get", ["id": .string(ppmidS2)])["data"]?["consumptionDays"]?.intValue ?? -1
        #expect(after == before + 3, "a day's total is recorded at each virtual midnight")
        #expect(try daemon.callError("clock.advance", ["seconds": -5])?.reason == "clock_invalid")
        let set = try daemon.call("clock.set", ["time": "2030-01-01T00:00:00Z"])
        #expect(set["now"]?.stringValue?.hasPrefix("2030-01-01T00:00:0") == true)
        #expect(daemon.stop() == 0)

        let again = try DaemonHarness(lab: daemon.labDirectory, state: daemon.stateDirectory, runtime: daemon.runtimeDirectory).start()
        defer { again.stop() }
        #expect(try again.call("clock.get")["now"]?.stringValue?.hasPrefix("2030-01-01T00:00:") == true)
    }

    @Test func eventsArePushedOnTheSubscribingConnection() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let subscriber = try daemon.client()
        defer { subscriber.close() }
        #expect(try subscriber.call("events.subscribe", params: ["types": ["device.joined"]])["subscribed"]?.boolValue == true)
        _ = try daemon.call("han.join", ["device": .string(spareS2), "hub": .string(hubS2)])
        let notification = try #require(try subscriber.nextNotification(timeout: .seconds(10)))
        #expect(notification.method == "event")
        #expect(notification.params?["type"]?.stringValue == "device.joined")
        #expect(notification.params?["device"]?.stringValue == spareS2)
        #expect(notification.params?["data"]?["mode"]?.stringValue == "SMETS2+")
    }

    @Test func subscribingToAnUnknownEventTypeNamesIt() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let error = try #require(try daemon.callError("events.subscribe", ["types": ["device.joined", "device.joind"]]))
        #expect(error.code == JSONRPCError.invalidParamsCode)
        #expect(error.message.contains("device.joind"))
        #expect(!error.message.contains("unknown event types device.joined"))
    }
}

/// Writes raw lines and reads raw answers, for what ControlClient would never send.
struct RawLineClient {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            offset += written
        }
    }

    /// Reads one line; nil at end of stream.
    func readLine() -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1 {
            if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
    }

    func exchange(_ line: String) throws -> JSONValue {
        write(Array((line + "\n").utf8))
        guard let answer = readLine() else { throw POSIXError(.ECONNRESET) }
        return try JSONValue.parse(answer)
    }

    func close() { Glibc.close(fd) }
}
