import Foundation
import SMETSCore
import SMETSRPC
import SMETSWire
import Testing

/// Change of Tenancy against the real daemon: what goes, what stays, and that it is gone from disk.
@Suite(.serialized) struct TenancyTests {
    let esme1 = "00-DB-12-34-56-78-00-02", ppmid1 = "00-DB-12-34-56-78-00-05", ihd1 = "00-DB-12-34-56-78-00-06"
    let esme2 = "00-DB-12-34-56-79-00-02", ppmid2 = "00-DB-12-34-56-79-00-05"
    /// IHDTS v4.2: built before the specification version that brought Change of Tenancy clearing.
    let ihdV4 = "00-DB-12-34-56-78-00-09"

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

    // SECMP0056 conclusions report (seed 003), "Summary of conclusions": the change at T clears the
    // prior occupant's data, never the new
    // occupant's, also when the clock jumps days past T before the change runs.
    @Test func aScheduledChangeClearsOnlyWhatWasRecordedUpToItsTime() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        _ = try daemon.call("clock.set", ["time": "2031-06-01T12:00:00Z"])
        try sendMessage(daemon, from: esme1, to: ihd1, id: 1, text: "to the prior occupant")
        #expect(try counts(daemon, ihd1)["consumptionDays"]?.intValue ?? 0 > 3, "seeded history before the change")
        _ = try daemon.call("tenancy.change", ["premises": "P0001", "implementationTime": "2031-06-02T06:00:00Z"])
        _ = try daemon.call("clock.advance", ["days": 4])
        // 2031-06-02 (from 06:00 on), 06-03 and 06-04 belong to the new occupant; the rest went.
        #expect(try counts(daemon, ihd1)["consumptionDays"]?.intValue == 3)
        #expect(try counts(daemon, ihd1)["messages"]?.intValue == 0)
        // The meters' copies of the messages they sent go on the scheduled path as on the immediate one.
        #expect(try counts(daemon, esme1)["messages"]?.intValue == 0)
    }

    // SECMP0056 conclusions report (seed 003), "Summary of conclusions": the day that contains T is
    // split at T, on the meter as on the display.
    @Test func theDayOfTheChangeIsSplitAtItsTime() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        _ = try daemon.call("clock.set", ["time": "2031-06-01T12:00:00Z"])
        let change = try #require(Timestamp(rfc3339: "2031-06-01T18:00:00Z"))
        _ = try daemon.call("tenancy.change", ["premises": "P0001", "implementationTime": .string(change.rfc3339)])
        _ = try daemon.call("clock.advance", ["hours": 18])
        let meter = try #require(EUI64(esme1))
        let whole = LoadProfile.dailyTotal(device: meter, type: .esme, day: change.dayNumber)
        let afterChange = LoadProfile.dailyTotal(device: meter, type: .esme, day: change.dayNumber, since: change)
        #expect(afterChange > 0 && afterChange < whole)
        let rig = try HANRig(path: daemon.hanPath, device: meter)
        defer { rig.close() }
        let values = try rig.readAttributes(ZCLClusterID.metering, [0x0403])
        #expect(values[0x0403] == .uint24(UInt32(afterChange)), "PreviousDayConsumptionDelivered holds only the new occupant's part")
        // The display holds that one split day and nothing before it.
        #expect(try counts(daemon, ihd1)["consumptionDays"]?.intValue == 1)
    }

    // SECMP0056 conclusions report (seed 003), "Subsequent Working Group discussions" (GDPR: the data
    // must be gone): gone from memory too. han.trace must not show the prior occupant's messages or UTRNs.
    @Test func theTracesLoseThePriorOccupantsFrames() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        try sendMessage(daemon, from: esme1, to: ppmid1, id: 3, text: "your balance is low")
        _ = try daemon.call("han.topUp", ["device": .string(ppmid1), "code": "12345678901234500150"])
        func commands(_ id: String) throws -> [String] {
            (try daemon.call("han.trace", ["device": .string(id)])["frames"]?.arrayValue ?? []).compactMap { $0["command"]?.stringValue }
        }
        #expect(try commands(ppmid1).contains("DisplayMessage"), "the trace held the message before the change, so the check can fail")
        #expect(try commands(esme1).contains("DisplayMessage"))
        _ = try daemon.call("tenancy.change", ["premises": "P0001"])
        for id in [ppmid1, esme1] {
            let left = try commands(id)
            #expect(!left.contains("DisplayMessage") && !left.contains("ConsumerTopUp"), "\(id): \(left)")
        }
        #expect(try commands(esme1).contains("PublishChangeOfTenancy"), "the change itself is no occupant's data")
    }

    // SECMP0056 conclusions report (seed 003), "Summary of responses", the implementation table
    // (IHDTS v5.0): a display built to IHDTS v4.2 keeps its data and
    // ignores the Change of Tenancy; the DCC and the supplier cannot make it clear.
    @Test func aDisplayBeforeIHDTSv5IgnoresTheChange() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        try sendMessage(daemon, from: esme1, to: ihdV4, id: 4, text: "kept by an older display")
        let before = try counts(daemon, ihdV4)
        _ = try daemon.call("tenancy.change", ["premises": "P0001"])
        let after = try counts(daemon, ihdV4)
        #expect(after["messages"]?.intValue == 1)
        #expect(after["consumptionDays"] == before["consumptionDays"])
        #expect(try counts(daemon, ihd1)["messages"]?.intValue == 0, "the current IHD of the same premises clears")
    }

    // The supplier is real: PublishChangeOfTenancy carries the provider ID supplier.change recorded.
    @Test func theChangeOfTenancyNamesTheRecordedProvider() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        _ = try daemon.call("supplier.change", ["premises": "P0001", "provider": "0000ABCD", "name": "New Energy"])
        _ = try daemon.call("tenancy.change", ["premises": "P0001"])
        let frames = try daemon.call("han.trace", ["device": .string(esme1)])["frames"]?.arrayValue ?? []
        let zcl = try #require(frames.last { $0["command"]?.stringValue == "PublishChangeOfTenancy" }?["zcl"]?.stringValue)
        let bytes = try #require(hexBytes(zcl))
        let frame = try ZCLFrame(decoding: bytes)
        let change = try frame.decodePayload(as: PublishChangeOfTenancy.self)
        #expect(change.providerID == 0x0000_ABCD)
    }

    // Every category filled by a real flow: the consumer's settings at the keypad go with bit 9, those
    // made after T stay.
    @Test func consumerSettingsMadeBeforeTheChangeGoAndLaterOnesStay() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        _ = try daemon.call("clock.set", ["time": "2031-06-01T12:00:00Z"])
        let set = try daemon.call("display.settings", ["device": .string(ppmid1), "set": ["budget": "300", "alert": "on"]])
        #expect(set["settings"]?["budget"]?.stringValue == "300")
        #expect(try counts(daemon, ppmid1)["consumerSettings"]?.intValue == 2)
        _ = try daemon.call("tenancy.change", ["premises": "P0001", "implementationTime": "2031-06-01T13:00:00Z"])
        _ = try daemon.call("clock.advance", ["minutes": 90])
        #expect(try counts(daemon, ppmid1)["consumerSettings"]?.intValue == 0)
        _ = try daemon.call("display.settings", ["device": .string(ppmid1), "set": ["budget": "200"]])
        _ = try daemon.call("clock.advance", ["days": 1])
        let after = try daemon.call("display.settings", ["device": .string(ppmid1)])
        #expect(after["settings"] == ["budget": "200"], "the new occupant's setting stays")
        // Refusals: a meter has no keypad settings; limits are named.
        #expect(throws: (any Error).self) { try daemon.call("display.settings", ["device": .string(esme1), "set": ["a": "b"]]) }
        #expect(throws: (any Error).self) { try daemon.call("display.settings", ["device": .string(ppmid1), "set": ["a b": "c"]]) }
        #expect(throws: (any Error).self) { try daemon.call("display.settings", ["device": .string(ppmid1), "set": ["a": .int(1)]]) }
    }

    func hexBytes(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        return stride(from: 0, to: chars.count, by: 2).compactMap { UInt8(String(decoding: chars[$0..<$0 + 2], as: UTF8.self), radix: 16) }
    }
}
