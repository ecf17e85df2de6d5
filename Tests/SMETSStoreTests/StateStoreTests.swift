import Foundation
import GRDB
import Testing
import SMETSCore
@testable import SMETSStore

@Suite("StateStore")
struct StateStoreTests {
    let state: TemporaryState
    init() throws { state = try TemporaryState() }
    var store: StateStore { state.store }

    let ppmid = eui("00-DB-12-34-56-78-00-05")
    let other = eui("00-DB-12-34-56-78-00-06")

    // MARK: schema and settings

    @Test("opening a new directory creates the database with every table")
    func migrationsCreateSchema() throws {
        #expect(FileManager.default.fileExists(atPath: store.path))
        #expect(store.path == state.directory.path + "/" + StateStore.fileName)
        // sqlite_master keeps each table's CREATE statement as text in the database file.
        try store.scrub()
        let database = try #require(try state.files().first { $0.name == StateStore.fileName }).bytes
        for table in ["meta", "premises", "device", "consumption_day", "message", "top_up", "debt_record",
                      "consumer_setting", "prepayment", "job"] {
            // A table rebuilt by a later migration and renamed keeps its name quoted (v7: job).
            let created = database.contains(bytes: Array("CREATE TABLE \(table) (".utf8))
                || database.contains(bytes: Array("CREATE TABLE \"\(table)\" (".utf8))
            #expect(created, "table \(table) is missing")
        }
        let indexed = database.contains(bytes: Array("CREATE UNIQUE INDEX top_up_code".utf8))
        #expect(indexed, "the unique index of top-up codes is missing")
        // And each is empty and usable.
        try store.read { tx throws in
            #expect(try tx.premisesCount() == 0)
            #expect(try tx.allDevices().isEmpty)
            #expect(try tx.allJobs().isEmpty)
            #expect(try tx.meta("anything") == nil)
            #expect(try tx.dataCounts(device: ppmid) == DataCounts())
            #expect(try tx.prepayment(device: ppmid) == nil)
        }
    }

    @Test("re-opening keeps the data and migrates nothing twice")
    func reopen() throws {
        try store.write { tx throws in
            try tx.setMeta("clock.offset", "42")
            try tx.save(sampleDevice(), origin: .lab)
        }
        let again = try StateStore(directory: state.directory.path + "/")
        #expect(again.path == store.path)
        #expect(try again.read { try $0.meta("clock.offset") } == "42")
        #expect(try again.read { try $0.allDevices() } == [sampleDevice()])
    }

    @Test("every connection is durable and scrubbing: synchronous FULL, secure_delete on, WAL")
    func pragmas() throws {
        #expect(try store.pragma("synchronous") == "2")
        #expect(try store.pragma("secure_delete") == "1")
        #expect(try store.pragma("journal_mode") == "wal")
        #expect(try store.pragma("foreign_keys") == "1")
        #expect(try store.pragma("synchronous; DROP TABLE device") == nil, "only a PRAGMA name is read")
    }

    @Test("meta values upsert")
    func meta() throws {
        try store.write { tx throws in
            #expect(try tx.meta("k") == nil)
            try tx.setMeta("k", "1")
            try tx.setMeta("k", "2")
        }
        #expect(try store.read { try $0.meta("k") } == "2")
    }

    @Test("a write that throws leaves nothing behind")
    func rollback() throws {
        struct Abort: Error {}
        #expect(throws: Abort.self) {
            try store.write { tx throws in
                try tx.save(sampleDevice(), origin: .api)
                throw Abort()
            }
        }
        #expect(try store.read { try $0.deviceExists(ppmid) } == false)
    }

    // MARK: premises

    @Test("premises: upsert keeps the origin, region changes; supplier and tenancy changes")
    func premises() throws {
        try store.write { tx throws in
            try tx.upsertPremises(id: "P0001", region: .north, origin: .lab)
            try tx.upsertPremises(id: "P0001", region: .south, origin: .api)
            try tx.upsertPremises(id: "P0002", region: .central, origin: .generated)
            try tx.setSupplier(premises: "P0001", supplier: "SUPPLIER-B")
            try tx.setTenancyChanged(premises: "P0002", at: Timestamp(unixSeconds: 1_800_000_000))
        }
        try store.read { tx throws in
            #expect(try tx.premisesCount() == 2)
            #expect(try tx.premisesExists("P0001"))
            #expect(try !tx.premisesExists("P0003"))
            #expect(try tx.premisesRegion("P0001") == .south)
            #expect(try tx.supplier(premises: "P0001") == "SUPPLIER-B")
            #expect(try tx.supplier(premises: "P0002") == nil)
            #expect(try tx.tenancyChanges() == ["P0002": Timestamp(unixSeconds: 1_800_000_000)])
        }
    }

    // MARK: devices

    @Test("a device round-trips every field", arguments: [
        sampleDevice(),
        sampleDevice(hub: nil),
        Device(id: EUI64(.max), type: .chf, premisesID: "G000001", modelKey: "northgrid-chf-s1", owner: "MAP-GEN",
               preNotified: .smets1, status: .commissioned, mode: .smets1, hub: nil, firmwareVersion: FirmwareVersion(.max),
               smetsVersion: .smets1, region: .south),
        Device(id: EUI64(0x8000_0000_0000_0001), type: .gsme, premisesID: "P2", modelKey: "acme-gsme", owner: "MAP-BETA",
               preNotified: .smets2, status: .suspended, mode: .undetermined, hub: EUI64(0xFFFF_FFFF_FFFF_FFFE),
               firmwareVersion: FirmwareVersion(0x8000_0000), smetsVersion: .smets2, region: .north),
    ])
    func deviceRoundTrip(device: Device) throws {
        try store.write { try $0.save(device, origin: .lab) }
        let loaded = try store.read { try $0.device(device.id) }
        #expect(loaded == device)
        #expect(loaded?.hub == device.hub)
        #expect(loaded?.smetsVersion == device.smetsVersion)
        #expect(try store.read { try $0.deviceExists(device.id) })
    }

    @Test("every type, status, mode and region survives the store")
    func deviceEnums() throws {
        var devices: [Device] = []
        var index: UInt64 = 1
        for type in DeviceType.allCases {
            for status in InventoryStatus.allCases {
                for mode in SMETSMode.allCases {
                    let device = Device(id: EUI64(index), type: type, premisesID: "P\(index)", modelKey: "m", owner: "o",
                                    preNotified: index % 2 == 0 ? .smets1 : .smets2, status: status, mode: mode,
                                    hub: index % 3 == 0 ? nil : EUI64(index + 1_000_000), firmwareVersion: FirmwareVersion(UInt32(index)),
                                    smetsVersion: [nil, .smets1, .smets2][Int(index % 3)],
                                    region: CSPRegion.allCases[Int(index % 3)])
                    devices.append(device)
                    index += 1
                }
            }
        }
        try store.write { tx in for device in devices { try tx.save(device, origin: .generated) } }
        #expect(try store.read { try $0.allDevices() } == devices)
    }

    @Test("saving again replaces the device wholesale")
    func deviceReplace() throws {
        var device = sampleDevice()
        try store.write { try $0.save(device, origin: .lab) }
        device.hub = nil
        device.mode = .undetermined
        device.status = .whitelisted
        device.firmwareVersion = FirmwareVersion(0x0103_0000)
        device.owner = "MAP-BETA"
        device.smetsVersion = .smets2
        try store.write { try $0.save(device, origin: .api) }
        #expect(try store.read { try $0.allDevices() } == [device])
    }

    @Test("removeDevice removes the device and every record it held, and nothing of another")
    func removeDevice() throws {
        try store.write { tx throws in
            for id in [ppmid, other] {
                try tx.save(sampleDevice(id.description), origin: .lab)
                try tx.saveConsumptionDay(device: id, day: 20_000, amount: 1)
                try tx.saveMessage(StoredMessage(messageID: 1, control: 0, startTime: 0, durationMinutes: 1, text: "hi",
                                                 receivedAt: Timestamp(unixSeconds: 1)), device: id)
                _ = try tx.saveTopUp(device: id, code: "1234", amount: 10, time: Timestamp(unixSeconds: 1), source: 1)
                try tx.saveDebtRecord(device: id, time: Timestamp(unixSeconds: 1), amount: 1, debtType: 0, outstanding: 1)
                try tx.saveConsumerSetting(device: id, key: "budget", value: "5")
                try tx.savePrepayment(PrepaymentState(credit: 1, emergencyCredit: 2, debt: 3), device: id)
            }
        }
        try store.write { try $0.removeDevice(ppmid) }
        try store.read { tx throws in
            #expect(try tx.device(ppmid) == nil)
            #expect(try !tx.deviceExists(ppmid))
            #expect(try tx.dataCounts(device: ppmid) == DataCounts())
            #expect(try tx.prepayment(device: ppmid) == nil)
            #expect(try tx.device(other) != nil)
            let kept = try tx.dataCounts(device: other)
            for category in DataCategory.allCases { #expect(kept.count(of: category) == 1, "\(category)") }
            #expect(try tx.prepayment(device: other) != nil)
        }
    }

    // MARK: jobs

    @Test("jobs insert with fresh ids, list, and delete")
    func jobs() throws {
        let first = try store.write { try $0.insertJob(due: Timestamp(unixSeconds: 20), kind: "tenancy", payload: "{\"premises\":\"P0001\"}") }
        let second = try store.write { try $0.insertJob(due: Timestamp(unixSeconds: 10), kind: "activate", payload: "{}") }
        #expect(first.id != second.id)
        #expect(first.kind == "tenancy" && first.due == Timestamp(unixSeconds: 20))
        #expect(Set(try store.read { try $0.allJobs() }) == [first, second])
        // The schedule built from the store runs them in due order.
        var schedule = Schedule(try store.read { try $0.allJobs() })
        #expect(schedule.popDue(at: Timestamp(unixSeconds: 30)).map(\.id) == [second.id, first.id])

        try store.write { try $0.deleteJob(first.id) }
        #expect(try store.read { try $0.allJobs() } == [second])
        try store.write { try $0.deleteJob(first.id) }
        #expect(try store.read { try $0.allJobs() } == [second])
    }

    @Test("the jobs of one kind are read through an index, without the others")
    func jobsOfOneKind() throws {
        let activation = try store.write { tx in
            for day in 0..<50 { _ = try tx.insertJob(due: Timestamp(unixSeconds: Int64(day)), kind: "tenancy-change", payload: "{}") }
            return try tx.insertJob(due: Timestamp(unixSeconds: 99), kind: "firmware-activation", payload: "{\"hash\":\"a\"}")
        }
        #expect(try store.read { try $0.jobs(kind: "firmware-activation") } == [activation])
        #expect(try store.read { try $0.jobs(kind: "tenancy-change") }.count == 50)
        #expect(try store.read { try $0.jobs(kind: "daily-rollover") }.isEmpty)
        let plan = try store.read { tx in
            try Row.fetchAll(tx.db, sql: "EXPLAIN QUERY PLAN SELECT id, due, kind, payload FROM job WHERE kind = ?", arguments: ["firmware-activation"])
                .map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("job_by_kind") }, "\(plan)")
    }

    @Test("a job replacing the newest one gets an ID of its own, so the replaced job's delete leaves it")
    func jobIDsAreNeverReused() throws {
        let replaced = try store.write { try $0.insertJob(due: Timestamp(unixSeconds: 10), kind: "firmware-activation", payload: "{\"hash\":\"a\"}") }
        // The schedule is replaced in one transaction: the old row goes, the new one comes.
        let replacement = try store.write { tx in
            try tx.deleteJob(replaced.id)
            return try tx.insertJob(due: Timestamp(unixSeconds: 20), kind: "firmware-activation", payload: "{\"hash\":\"b\"}")
        }
        #expect(replacement.id != replaced.id)
        // The replaced job, taken to run before it was replaced, finishes by deleting its own row.
        try store.write { try $0.deleteJob(replaced.id) }
        #expect(try store.read { try $0.allJobs() } == [replacement])
    }

    @Test("held DUIS work never takes the ID of work deleted before it")
    func duisHeldIDsAreNeverReused() throws {
        func held(_ requestID: String) -> DUISHeldRow {
            DUISHeldRow(kind: .request, requestID: requestID, device: "00-00-00-00-00-00-00-01", variant: "11.2",
                        due: Timestamp(unixSeconds: 10), document: Array("<a/>".utf8))
        }
        let first = try store.write { try $0.insertDUISHeld(held("A")) }
        let second = try store.write { tx in
            try tx.deleteDUISHeld([first])
            return try tx.insertDUISHeld(held("B"))
        }
        #expect(second != first)
        // A late delete of the first work leaves the second in place.
        try store.write { try $0.deleteDUISHeld([first]) }
        #expect(try store.read { try $0.allDUISHeld() }.map(\.requestID) == ["B"])
    }
}
