import Foundation
import SMETSCore
import SMETSRPC
import SMETSWire
import Testing

/// Change of Tenancy against the real daemon: what goes, what stays, and that it is gone from disk.
@Suite(.serialized) struct TenancyTests {
    let esme1 = "00-DB-12-34-56-78-00-02", ppmid1 = "00-DB-12-34-56-78-00-05", ihd1 = "00-DB-12-34-56-78-00-06"
    let esme2 = "00-DB-12-34-56-79-00-02", ppmid2 = "00-DB-12-34-56-79-00-05"

    func hex(_ bytes: [UInt8]) -> String { bytes.map { upperHex($0, width: 2) }.joined() }

    /// The meter sends a supplier message to a display over the HAN.
    func sendMessage(_ daemon: DaemonHarness, from meter: String, to display: String, id: UInt32, text: String) throws {
        let frame = ZCLFrame(DisplayMessage(messageID: id, messageControl: 0, startTime: 0, durationMinutes: 0xFFFF, message: text),
                             sequenceNumber: UInt8(truncatingIfNeeded: id), disableDefaultResponse: true)
        _ = try daemon.call("han.send", ["from": .string(meter), "to": .string(display), "cluster": "0703", "zcl": .string(hex(frame.encoded()))])
    }

    func counts(_ daemon: DaemonHarness, _ id: String) throws -> JSONValue {
        try #require(try daemon.call("devices.get", ["id": .string(id)])["data"])
    }

    /// Every byte of every file under `directory`.
    func contains(_ marker: String, under directory: String) throws -> Bool {
        let needle = Array(marker.utf8)
        let files = FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []
        for file in files {
            guard let data = FileManager.default.contents(atPath: directory + "/" + file) else { continue }
            let bytes = [UInt8](data)
            if bytes.count >= needle.count {
                for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] && Array(bytes[start..<start + needle.count]) == needle {
                    return true
                }
            }
        }
        return false
    }

    @Test func theOldOccupantsDataIsGoneFromEveryFileAndTheRestStays() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let marker1 = "MARKER-P0001-\(UUID().uuidString)", marker2 = "MARKER-P0002-\(UUID().uuidString)"
        for index in 0..<5 { try sendMessage(daemon, from: esme1, to: ppmid1, id: UInt32(100 + index), text: "\(marker1)-\(index)") }
        try sendMessage(daemon, from: esme2, to: ppmid2, id: 7, text: marker2)
        let accepted = try daemon.call("han.topUp", ["device": .string(ppmid1), "code": "12345678901234500150"])
        #expect(accepted["accepted"]?.boolValue == true)
        #expect(try counts(daemon, ppmid1)["messages"]?.intValue == 5)
        #expect(try counts(daemon, ppmid1)["topUps"]?.intValue == 1)
        let history = try counts(daemon, ppmid1)["consumptionDays"]?.intValue ?? 0
        #expect(history > 0)
        #expect(try contains(marker1, under: daemon.stateDirectory), "the marker is on disk before the change, so the scan can fail")

        // Only supplier data (bit 10) and the transaction log (bit 13): history must stay.
        let control = (1 << 10) | (1 << 13)
        let result = try daemon.call("tenancy.change", ["premises": "P0001", "control": .int(Int64(control))])
        #expect(result["pending"]?.boolValue == false)
        let cleared = result["devices"]?.arrayValue?.first { $0["id"]?.stringValue == ppmid1 }?["cleared"]
        #expect(cleared?["supplierMessages"]?.intValue == 5)
        #expect(cleared?["topUpLog"]?.intValue == 1)

        #expect(try counts(daemon, ppmid1)["messages"]?.intValue == 0)
        #expect(try counts(daemon, ppmid1)["topUps"]?.intValue == 0)
        #expect(try counts(daemon, ppmid1)["consumptionDays"]?.intValue == history, "bit 8 was not selected")
        #expect(try counts(daemon, ppmid2)["messages"]?.intValue == 1, "another premises is untouched")
        #expect(try !contains(marker1, under: daemon.stateDirectory), "no byte of a cleared message remains in any state file")
        #expect(try contains(marker2, under: daemon.stateDirectory))

        // New data after the change is kept.
        try sendMessage(daemon, from: esme1, to: ppmid1, id: 900, text: "welcome, new occupant")
        #expect(try counts(daemon, ppmid1)["messages"]?.intValue == 1)
    }

    @Test func aPendingChangeFiresOnceAtItsTimeEvenAfterARestart() throws {
        let daemon = try DaemonHarness().start()
        // Noon, so that the hours below never cross a virtual midnight (which would add a day of history).
        _ = try daemon.call("clock.set", ["time": "2031-06-01T12:00:00Z"])
        try sendMessage(daemon, from: esme1, to: ihd1, id: 1, text: "before the move")
        let due = try #require(Timestamp(rfc3339: "2031-06-01T13:00:00Z"))
        let result = try daemon.call("tenancy.change", ["premises": "P0001", "implementationTime": .string(due.rfc3339)])
        #expect(result["pending"]?.boolValue == true)
        #expect(try counts(daemon, ihd1)["messages"]?.intValue == 1, "nothing is cleared before the implementation time")
        #expect(daemon.stop() == 0)

        // While the daemon is down the time passes (the clock is moved on at the next start).
        let again = try DaemonHarness(lab: daemon.labDirectory, state: daemon.stateDirectory, runtime: daemon.runtimeDirectory).start()
        defer { again.stop() }
        #expect(try counts(again, ihd1)["messages"]?.intValue == 1)
        _ = try again.call("clock.advance", ["hours": 2])
        #expect(try counts(again, ihd1)["messages"]?.intValue == 0)
        #expect(try counts(again, ihd1)["consumptionDays"]?.intValue == 0)
        // It fired once: a message after it stays.
        try sendMessage(again, from: esme1, to: ihd1, id: 2, text: "after the move")
        _ = try again.call("clock.advance", ["hours": 2])
        #expect(try counts(again, ihd1)["messages"]?.intValue == 1)
    }

    @Test func aRigsPublishChangeOfTenancyClearsTheSameWay() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        try sendMessage(daemon, from: esme1, to: ppmid1, id: 5, text: "from the supplier")
        let change = PublishChangeOfTenancy(providerID: 1, issuerEventID: 2, tariffType: 0, implementationTime: 0,
                                            tenancyChangeControl: TenancyRules.clearAllOccupantData)
        let frame = ZCLFrame(change, sequenceNumber: 9, disableDefaultResponse: false)
        _ = try daemon.call("han.send", ["from": .string(esme1), "to": .string(ppmid1), "cluster": "0708", "zcl": .string(hex(frame.encoded()))])
        #expect(try counts(daemon, ppmid1)["messages"]?.intValue == 0)
        #expect(try counts(daemon, ppmid1)["consumptionDays"]?.intValue == 0)
        let trace = try daemon.call("han.trace", ["device": .string(ppmid1)])["frames"]?.arrayValue ?? []
        #expect(trace.contains { $0["command"]?.stringValue == "PublishChangeOfTenancy" && $0["direction"]?.stringValue == "in" })
        #expect(trace.contains { $0["command"]?.stringValue == "DefaultResponse" && $0["status"]?.stringValue?.contains("SUCCESS") == true })
    }

    @Test func aChangeOfSupplierKeepsTheDevicesJoined() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let result = try daemon.call("supplier.change", ["premises": "P0001", "provider": "0000ABCD", "name": "New Energy"])
        #expect(result["notified"]?.arrayValue?.count == 3, "the PPMID, the IHD and the IHDTS v4.2 IHD")
        let ppmid = try daemon.call("devices.get", ["id": .string(ppmid1)])
        #expect(ppmid["status"]?.stringValue == "Commissioned")
        #expect(ppmid["hub"]?.stringValue == "00-DB-12-34-56-78-00-01")
    }
}
