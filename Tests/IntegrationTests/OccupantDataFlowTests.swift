import Foundation
import SMETSCore
import SMETSRPC
import SMETSWire
import Testing

/// Every category of occupant data filled by real flows (debt accrued on the virtual clock and
/// recovered from top-ups, logs a PPMID is sent, settings written over the HAN), then a Change of
/// Tenancy that clears only what was recorded up to its time. SECMP0056 conclusions report (seed
/// 003): "Summary of conclusions" (consumption, consumer and supplier data) and "Modification Report
/// Consultation responses" / "Subsequent Working Group discussions" (top-up history and debt-recovery
/// information, functions some devices add beyond SMETS).
@Suite(.serialized) struct OccupantDataFlowTests {
    let esme1 = "00-DB-12-34-56-78-00-02", ppmid1 = "00-DB-12-34-56-78-00-05", ihd1 = "00-DB-12-34-56-78-00-06"
    /// brightview-ihd's manufacturer code: a setting written over the HAN carries it.
    let brightview: UInt16 = 0x5678

    func hex(_ bytes: [UInt8]) -> String { bytes.map { upperHex($0, width: 2) }.joined() }

    func send(_ daemon: DaemonHarness, from: String, to: String, cluster: UInt16, _ frame: ZCLFrame) throws {
        _ = try daemon.call("han.send", ["from": .string(from), "to": .string(to), "cluster": .string(upperHex(cluster, width: 4)),
                                         "zcl": .string(hex(frame.encoded()))])
    }

    func counts(_ daemon: DaemonHarness, _ id: String) throws -> JSONValue {
        try #require(try daemon.call("devices.get", ["id": .string(id)])["data"])
    }

    /// The PPMID asks its meter for the top-up and debt repayment logs; the meter's answers reach it over the HAN.
    func fetchLogs(_ daemon: DaemonHarness) throws {
        try send(daemon, from: ppmid1, to: esme1, cluster: ZCLClusterID.prepayment,
                 ZCLFrame(GetTopUpLog(latestEndTime: 0xFFFF_FFFF, numberOfRecords: 30), sequenceNumber: 1, disableDefaultResponse: true))
        try send(daemon, from: ppmid1, to: esme1, cluster: ZCLClusterID.prepayment,
                 ZCLFrame(GetDebtRepaymentLog(latestEndTime: 0xFFFF_FFFF, numberOfDebts: 30, debtType: 0xFF), sequenceNumber: 2, disableDefaultResponse: true))
    }

    /// A rig on the IHD's HAN link writes a consumer setting; returns the Write Attributes Response.
    func writeSetting(_ rig: HANRig, _ text: String, code: UInt16? = nil) throws -> WriteAttributesResponse {
        let write = WriteAttributes(records: [.init(attributeID: 0xFF00, value: .charString(text))])
        rig.send(ZCLFrame(write, direction: .clientToServer, sequenceNumber: 7, manufacturerCode: code ?? brightview), cluster: ZCLClusterID.basic)
        let answer = try #require(try rig.nextZCL(cluster: ZCLClusterID.basic))
        #expect(answer.header.commandID == ZCLGlobalCommandID.writeAttributesResponse)
        return try answer.decodePayload(as: WriteAttributesResponse.self)
    }

    @Test func meterDebtAccruesDailyAndTopUpsRecoverIt() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        _ = try daemon.call("clock.set", ["time": "2031-06-01T12:00:00Z"])
        let set = try daemon.call("meter.debt", ["device": .string(esme1), "debt": 1000, "perDay": 50, "recoveryPercent": 50])
        #expect(set["debt"]?.intValue == 1000 && set["perDay"]?.intValue == 50 && set["recoveryPercent"]?.intValue == 50)
        // Two days end on the virtual clock: the rollover job adds the time-based debt of each.
        _ = try daemon.call("clock.advance", ["days": 2])
        #expect(try daemon.call("meter.debt", ["device": .string(esme1)])["debt"]?.intValue == 1100)
        // Half of a 400p top-up recovers debt; the rest is credit.
        let topUp = try daemon.call("han.topUp", ["device": .string(ppmid1), "code": "11111111111111100400"])
        #expect(topUp["accepted"]?.boolValue == true && topUp["value"]?.intValue == 400)
        #expect(topUp["creditRemaining"]?.intValue == 1200)
        let after = try daemon.call("meter.debt", ["device": .string(esme1)])
        #expect(after["debt"]?.intValue == 900 && after["credit"]?.intValue == 1200)
        #expect(try counts(daemon, esme1)["debtRecords"]?.intValue == 1, "the meter's debt repayment log holds the collection")
        // A rig on the meter reads the collection back over the HAN.
        let meter = try #require(EUI64(esme1))
        let rig = try HANRig(path: daemon.hanPath, device: meter)
        defer { rig.close() }
        rig.send(ZCLFrame(GetDebtRepaymentLog(latestEndTime: 0xFFFF_FFFF, numberOfDebts: 5, debtType: 0xFF), sequenceNumber: 3, disableDefaultResponse: true),
                 cluster: ZCLClusterID.prepayment)
        let log = try #require(try rig.nextZCL(cluster: ZCLClusterID.prepayment)).decodePayload(as: PublishDebtLog.self)
        #expect(log.collections.map(\.amountCollected) == [200] && log.collections.first?.outstandingDebt == 900 && log.collections.first?.debtType == 2)
        // Bounds are the caller's error; a display holds no debt.
        #expect(try daemon.callError("meter.debt", ["device": .string(esme1), "recoveryPercent": 101])?.code == -32602)
        #expect(try daemon.callError("meter.debt", ["device": .string(ppmid1), "debt": 1]) != nil)
    }

    @Test func eachDayAccruesOnceAcrossARestart() throws {
        let daemon = try DaemonHarness().start()
        _ = try daemon.call("clock.set", ["time": "2031-06-01T12:00:00Z"])
        _ = try daemon.call("meter.debt", ["device": .string(esme1), "perDay": 50])
        _ = try daemon.call("clock.advance", ["days": 1])
        #expect(try daemon.call("meter.debt", ["device": .string(esme1)])["debt"]?.intValue == 50)
        #expect(daemon.stop() == 0)
        let again = try DaemonHarness(lab: daemon.labDirectory, state: daemon.stateDirectory, runtime: daemon.runtimeDirectory).start()
        defer { again.stop() }
        #expect(try again.call("meter.debt", ["device": .string(esme1)])["debt"]?.intValue == 50, "a day that ended is not accrued again")
        _ = try again.call("clock.advance", ["days": 3])
        #expect(try again.call("meter.debt", ["device": .string(esme1)])["debt"]?.intValue == 200)
    }

    @Test func settingsWrittenOverTheHANAreTheConsumersAndRefusalsNameTheirStatus() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let rig = try HANRig(path: daemon.hanPath, device: try #require(EUI64(ihd1)))
        defer { rig.close() }
        #expect(try writeSetting(rig, "budget=300").failures.isEmpty)
        #expect(try daemon.call("display.settings", ["device": .string(ihd1)])["settings"]?["budget"]?.stringValue == "300")
        #expect(try writeSetting(rig, "no equals sign").failures.map(\.status) == [.invalidValue])
        #expect(try writeSetting(rig, "budget=1", code: 0x1234).failures.map(\.status) == [.unsupportedAttribute], "another manufacturer's attribute")
        #expect(try counts(daemon, ihd1)["consumerSettings"]?.intValue == 1)
    }

    @Test func aChangeOfTenancyClearsWhatTheFlowsFilledUpToItsTimeOnly() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        _ = try daemon.call("clock.set", ["time": "2031-06-03T12:00:00Z"])
        _ = try daemon.call("meter.debt", ["device": .string(esme1), "debt": 1000, "recoveryPercent": 50])
        let rig = try HANRig(path: daemon.hanPath, device: try #require(EUI64(ihd1)))
        defer { rig.close() }

        // The prior occupant, before T: a top-up from the PPMID, one the meter took from the IHD,
        // the logs the PPMID fetched, a setting at each display.
        _ = try daemon.call("han.topUp", ["device": .string(ppmid1), "code": "11111111111111100400"])
        try send(daemon, from: ihd1, to: esme1, cluster: ZCLClusterID.prepayment,
                 ZCLFrame(ConsumerTopUp(originatingDevice: 0x02, topUpCode: Array("22222222222222200100".utf8)), sequenceNumber: 4, disableDefaultResponse: true))
        try fetchLogs(daemon)
        #expect(try writeSetting(rig, "budget=300").failures.isEmpty)
        _ = try daemon.call("display.settings", ["device": .string(ppmid1), "set": ["alert": "on"]])
        var ppmid = try counts(daemon, ppmid1)
        #expect(ppmid["topUps"]?.intValue == 2, "its own top-up and the one it learnt from the meter's log")
        #expect(ppmid["debtRecords"]?.intValue == 2 && ppmid["consumerSettings"]?.intValue == 1)

        // The new occupant, after T (13:00): another top-up, the logs fetched again, new settings.
        _ = try daemon.call("clock.advance", ["hours": 2])
        _ = try daemon.call("han.topUp", ["device": .string(ppmid1), "code": "33333333333333300200"])
        try fetchLogs(daemon)
        #expect(try writeSetting(rig, "unit=kWh").failures.isEmpty)
        _ = try daemon.call("display.settings", ["device": .string(ppmid1), "set": ["night": "dim"]])
        ppmid = try counts(daemon, ppmid1)
        #expect(ppmid["topUps"]?.intValue == 3 && ppmid["debtRecords"]?.intValue == 3 && ppmid["consumerSettings"]?.intValue == 2)

        // PublishChangeOfTenancy over the HAN with T in the past: what was recorded up to T goes.
        let implementation = try #require(Timestamp(rfc3339: "2031-06-03T13:00:00Z"))
        let change = PublishChangeOfTenancy(providerID: 1, issuerEventID: 2, tariffType: 0, implementationTime: implementation.zigbeeUTC,
                                            tenancyChangeControl: TenancyRules.clearAllOccupantData)
        for display in [ppmid1, ihd1] {
            try send(daemon, from: esme1, to: display, cluster: ZCLClusterID.deviceManagement, ZCLFrame(change, sequenceNumber: 9, disableDefaultResponse: true))
        }
        ppmid = try counts(daemon, ppmid1)
        #expect(ppmid["topUps"]?.intValue == 1 && ppmid["debtRecords"]?.intValue == 1 && ppmid["consumerSettings"]?.intValue == 1)
        #expect(try daemon.call("display.settings", ["device": .string(ppmid1)])["settings"] == ["night": "dim"])
        #expect(try daemon.call("display.settings", ["device": .string(ihd1)])["settings"] == ["unit": "kWh"])
        // The meter is no display: its own logs stay, whole.
        #expect(try counts(daemon, esme1)["debtRecords"]?.intValue == 3)
    }
}
