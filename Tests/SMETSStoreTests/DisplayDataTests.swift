import Foundation
import Testing
import SMETSCore
@testable import SMETSStore

@Suite("Display data: messages, top-ups, debt, consumption, clearing")
struct DisplayDataTests {
    let state: TemporaryState
    init() throws { state = try TemporaryState() }
    var store: StateStore { state.store }

    let ppmid = eui("00-DB-12-34-56-78-00-05")
    let ihd = eui("00-DB-12-34-56-78-00-06")

    func message(_ id: UInt32, _ text: String, at seconds: Int64) -> StoredMessage {
        StoredMessage(messageID: id, control: 0x9C, startTime: 0xFFFF_FFFE, durationMinutes: 0xFFFF, text: text,
                      receivedAt: Timestamp(unixSeconds: seconds))
    }

    /// Gives `device` one record or more of every category.
    func fill(_ device: EUI64, tag: String) throws {
        try store.write { tx throws in
            for day in Int64(20_000)..<20_003 { try tx.saveConsumptionDay(device: device, day: day, amount: day) }
            try tx.saveMessage(message(1, "\(tag) one", at: 100), device: device)
            try tx.saveMessage(message(2, "\(tag) two", at: 200), device: device)
            _ = try tx.saveTopUp(device: device, code: "\(tag)-code-1", amount: 500, time: Timestamp(unixSeconds: 10), source: 1)
            try tx.saveDebtRecord(device: device, time: Timestamp(unixSeconds: 20), amount: 30, debtType: 1, outstanding: 400)
            try tx.saveConsumerSetting(device: device, key: "budget", value: "\(tag)")
            try tx.saveConsumerSetting(device: device, key: "alert", value: "on")
        }
    }

    // MARK: messages

    @Test("messages save every field, list oldest first, confirm and delete")
    func messages() throws {
        let first = StoredMessage(messageID: 0xFFFF_FFFF, control: 0xFF, startTime: 0xFFFF_FFFF, durationMinutes: 0xFFFF,
                                  text: "Your tariff changes on 1 April — ünïcödé 😀", receivedAt: Timestamp(unixMillis: 1_700_000_000_123))
        let second = StoredMessage(messageID: 7, control: 0, startTime: 0, durationMinutes: 30, text: "",
                                   receivedAt: Timestamp(unixMillis: 1_700_000_000_124), confirmedAt: Timestamp(unixSeconds: 1_700_000_100))
        try store.write { tx throws in
            try tx.saveMessage(second, device: ppmid)
            try tx.saveMessage(first, device: ppmid)
        }
        #expect(try store.read { try $0.messages(device: ppmid) } == [first, second])
        #expect(try store.read { try $0.messages(device: ihd) }.isEmpty)

        let confirmedAt = Timestamp(unixSeconds: 1_700_000_500)
        #expect(try store.write { try $0.confirmMessage(device: ppmid, messageID: 0xFFFF_FFFF, at: confirmedAt) })
        #expect(try store.write { try $0.confirmMessage(device: ppmid, messageID: 99, at: confirmedAt) } == false)
        #expect(try store.write { try $0.confirmMessage(device: ihd, messageID: 7, at: confirmedAt) } == false)
        #expect(try store.read { try $0.messages(device: ppmid) }.first?.confirmedAt == confirmedAt)

        #expect(try store.write { try $0.deleteMessage(device: ppmid, messageID: 7) })
        #expect(try store.write { try $0.deleteMessage(device: ppmid, messageID: 7) } == false)
        #expect(try store.read { try $0.messages(device: ppmid) }.map(\.messageID) == [0xFFFF_FFFF])
    }

    @Test("a message sent again with the same ID replaces the old one and needs confirming again")
    func messageReplaced() throws {
        try store.write { tx throws in
            try tx.saveMessage(message(5, "old", at: 100), device: ppmid)
            _ = try tx.confirmMessage(device: ppmid, messageID: 5, at: Timestamp(unixSeconds: 150))
            try tx.saveMessage(message(5, "new", at: 200), device: ppmid)
        }
        let stored = try store.read { try $0.messages(device: ppmid) }
        #expect(stored == [message(5, "new", at: 200)])
        #expect(stored.first?.confirmedAt == nil)
    }

    // MARK: top-ups and debt

    @Test("top-ups number per device, list latest first, and a code is accepted once per device")
    func topUps() throws {
        let (a, b) = try store.write { tx throws in
            (try tx.saveTopUp(device: ppmid, code: "73071234567890123456", amount: 1_000, time: Timestamp(unixSeconds: 100), source: 1),
             try tx.saveTopUp(device: ppmid, code: "73079999999999999999", amount: -5, time: Timestamp(unixSeconds: 200), source: 2))
        }
        #expect(a.seq == 1 && b.seq == 2)
        let c = try store.write { try $0.saveTopUp(device: ihd, code: "73071234567890123456", amount: 1, time: Timestamp(unixSeconds: 50), source: 0) }
        #expect(c.seq == 1, "sequence numbers are per device; another device may use the same code")

        try store.read { tx throws in
            #expect(try tx.topUpExists(device: ppmid, code: "73071234567890123456"))
            #expect(try !tx.topUpExists(device: ppmid, code: "00000000000000000000"))
            #expect(try tx.topUps(device: ppmid) == [b, a])
            #expect(try tx.topUps(device: ppmid, notAfter: Timestamp(unixSeconds: 150)) == [a])
            #expect(try tx.topUps(device: ppmid, notAfter: Timestamp(unixSeconds: 200)) == [b, a])
            #expect(try tx.topUps(device: ppmid, limit: 1) == [b])
        }

        // The unique index refuses the same code twice on one device, and the failed write leaves nothing.
        #expect(throws: (any Error).self) {
            try store.write { tx throws in
                _ = try tx.saveTopUp(device: ppmid, code: "73071234567890123456", amount: 1_000, time: Timestamp(unixSeconds: 300), source: 1)
            }
        }
        #expect(try store.read { try $0.topUps(device: ppmid) }.count == 2)
    }

    @Test("debt records number per device and list latest first")
    func debtRecords() throws {
        try store.write { tx throws in
            try tx.saveDebtRecord(device: ppmid, time: Timestamp(unixSeconds: 10), amount: 100, debtType: 1, outstanding: 900)
            try tx.saveDebtRecord(device: ppmid, time: Timestamp(unixSeconds: 20), amount: .max, debtType: 2, outstanding: .max)
        }
        let records = try store.read { try $0.debtRecords(device: ppmid) }
        #expect(records == [
            StoredDebtRecord(seq: 2, time: Timestamp(unixSeconds: 20), amount: .max, debtType: 2, outstanding: .max),
            StoredDebtRecord(seq: 1, time: Timestamp(unixSeconds: 10), amount: 100, debtType: 1, outstanding: 900),
        ])
        #expect(try store.read { try $0.debtRecords(device: ppmid, notAfter: Timestamp(unixSeconds: 15)) }.map(\.seq) == [1])
        #expect(try store.read { try $0.debtRecords(device: ihd) }.isEmpty)
    }

    @Test("prepayment state upserts, extremes included")
    func prepayment() throws {
        try store.write { try $0.savePrepayment(PrepaymentState(credit: 100, emergencyCredit: 0, debt: 5), device: ppmid) }
        let extremes = PrepaymentState(credit: .min, emergencyCredit: .max, debt: -1)
        try store.write { try $0.savePrepayment(extremes, device: ppmid) }
        #expect(try store.read { try $0.prepayment(device: ppmid) } == extremes)
        #expect(try store.read { try $0.prepayment(device: ihd) } == nil)
    }

    @Test("a meter's debt settings are kept with its balances; only meters with a daily debt accrue")
    func debtSettings() throws {
        let accruing = PrepaymentState(credit: 1, emergencyCredit: 2, debt: 3, debtPerDay: .max, recoveryPercent: 255)
        try store.write { tx throws in
            try tx.savePrepayment(accruing, device: ppmid)
            try tx.savePrepayment(PrepaymentState(credit: 1, emergencyCredit: 2, debt: 3, recoveryPercent: 50), device: ihd)
        }
        #expect(try store.read { try $0.prepayment(device: ppmid) } == accruing)
        let meters = try store.read { try $0.debtAccruingMeters() }
        #expect(meters.map(\.device) == [ppmid] && meters.first?.state == accruing)
    }

    @Test("consumer settings upsert per key")
    func consumerSettings() throws {
        try store.write { tx throws in
            try tx.saveConsumerSetting(device: ppmid, key: "budget", value: "10")
            try tx.saveConsumerSetting(device: ppmid, key: "budget", value: "12")
            try tx.saveConsumerSetting(device: ppmid, key: "alert", value: "on")
        }
        #expect(try store.read { try $0.consumerSettings(device: ppmid) } == ["budget": "12", "alert": "on"])
        #expect(try store.read { try $0.consumerSettings(device: ihd) }.isEmpty)
    }

    // MARK: consumption

    @Test("consumption days upsert, list latest first, and prune before a day")
    func consumptionDays() throws {
        try store.write { tx throws in
            for day in Int64(20_000)..<20_010 { try tx.saveConsumptionDay(device: ppmid, day: day, amount: day * 10) }
            try tx.saveConsumptionDay(device: ppmid, day: 20_005, amount: 1)
            try tx.saveConsumptionDay(device: ihd, day: 20_000, amount: 7)
        }
        let days = try store.read { try $0.consumptionDays(device: ppmid) }
        #expect(days.count == 10)
        #expect(days.map(\.day) == Array((Int64(20_000)..<20_010).reversed()))
        #expect(days.first { $0.day == 20_005 }?.amount == 1)
        #expect(days.first { $0.day == 20_009 }?.amount == 200_090)
        #expect(try store.read { try $0.consumptionDays(device: ppmid, limit: 3) }.map(\.day) == [20_009, 20_008, 20_007])

        try store.write { try $0.pruneConsumption(device: ppmid, before: 20_007) }
        #expect(try store.read { try $0.consumptionDays(device: ppmid) }.map(\.day) == [20_009, 20_008, 20_007])
        #expect(try store.read { try $0.consumptionDays(device: ihd) }.map(\.amount) == [7], "pruning is per device")
    }

    // MARK: clearing

    @Test("clear removes only the selected categories, of only that device, and counts what went",
          arguments: [Set<DataCategory>([.supplierMessages]), [.consumptionHistory, .consumerData],
                      [.topUpLog, .debtLog], Set(DataCategory.allCases), []])
    func clear(categories: Set<DataCategory>) throws {
        try fill(ppmid, tag: "ppmid")
        try fill(ihd, tag: "ihd")
        let before = try store.read { try $0.dataCounts(device: ppmid) }
        #expect(before.consumptionDays == 3 && before.messages == 2 && before.topUps == 1 && before.debtRecords == 1 && before.consumerSettings == 2)

        let removed = try store.write { try $0.clear(categories, device: ppmid) }
        #expect(Set(removed.keys) == categories)
        for category in categories { #expect(removed[category] == before.count(of: category), "\(category)") }

        let after = try store.read { try $0.dataCounts(device: ppmid) }
        for category in DataCategory.allCases {
            #expect(after.count(of: category) == (categories.contains(category) ? 0 : before.count(of: category)), "\(category)")
        }
        #expect(try store.read { try $0.dataCounts(device: ihd) } == before, "the other device keeps everything")

        // Clearing again finds nothing.
        let again = try store.write { try $0.clear(categories, device: ppmid) }
        #expect(again.values.allSatisfy { $0 == 0 })
    }

    @Test("a cleared top-up code may be used again")
    func clearedTopUpCode() throws {
        try fill(ppmid, tag: "ppmid")
        #expect(try store.read { try $0.topUpExists(device: ppmid, code: "ppmid-code-1") })
        _ = try store.write { try $0.clear([.topUpLog], device: ppmid) }
        #expect(try store.read { try $0.topUpExists(device: ppmid, code: "ppmid-code-1") } == false)
        let again = try store.write { try $0.saveTopUp(device: ppmid, code: "ppmid-code-1", amount: 1, time: Timestamp(unixSeconds: 1), source: 1) }
        #expect(again.seq == 1)
    }

    // MARK: gone for good

    /// GDPR: cleared occupant data must be gone from the disk, not merely hidden. `secure_delete`
    /// zeroes the rows in the pages and `scrub()` empties the WAL, so no file of the state directory
    /// holds the marker's bytes any more.
    @Test("cleared supplier messages leave no bytes in any file once scrubbed")
    func goneForGood() throws {
        let marker = "GONE-FOR-GOOD-\(UUID().uuidString)"
        let needle = Array(marker.utf8)
        try store.write { tx throws in
            for id in UInt32(1)...20 {
                try tx.saveMessage(message(id, "\(marker) message \(id): your tariff changes soon", at: Int64(id)), device: ppmid)
            }
            try tx.saveMessage(message(1, "another occupant's message stays", at: 1), device: ihd)
        }
        // Control: the marker is on disk (in the WAL, or the database once checkpointed), so the search can find it.
        let onDisk = try state.files().contains { $0.bytes.contains(bytes: needle) }
        #expect(onDisk, "the marker should be on disk before clearing")
        try store.scrub()
        let holders = try state.files().filter { $0.bytes.contains(bytes: needle) }.map(\.name)
        #expect(holders == [StateStore.fileName], "after a checkpoint the marker is in the database file")

        let removed = try store.write { try $0.clear([.supplierMessages], device: ppmid) }
        #expect(removed == [.supplierMessages: 20])
        try store.scrub()

        let files = try state.files()
        #expect(files.contains { $0.name == StateStore.fileName })
        for file in files {
            let holdsMarker = file.bytes.contains(bytes: needle)
            #expect(!holdsMarker, "\(file.name) (\(file.bytes.count) bytes) still holds the cleared messages")
        }
        // The other device's message is still there, and readable.
        #expect(try store.read { try $0.messages(device: ihd) }.map(\.text) == ["another occupant's message stays"])
        let keepsOther = files.first { $0.name == StateStore.fileName }?.bytes.contains(bytes: Array("another occupant's message stays".utf8))
        #expect(keepsOther == true)
    }

    /// Found by scripts/crash-campaign: a kill after a Change of Tenancy's commit and before its
    /// scrub left the cleared messages' old page images in the WAL, and nothing scrubbed them after
    /// the restart.
    @Test("a crash between a clearing commit and its scrub leaves nothing once the store is opened again")
    func crashBeforeScrub() throws {
        let marker = "CRASH-BEFORE-SCRUB-\(UUID().uuidString)"
        try store.write { tx throws in try tx.saveMessage(message(1, marker, at: 1), device: ppmid) }
        let removed = try store.write { try $0.clear([.supplierMessages], device: ppmid) }
        #expect(removed == [.supplierMessages: 1])
        // The kill: the files exactly as they are now, with no scrub (the -shm is rebuilt on open).
        let crashed = FileManager.default.temporaryDirectory.appendingPathComponent("smetsd-crashed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: crashed, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: crashed) }
        for file in try state.files() where !file.name.hasSuffix("-shm") {
            try Data(file.bytes).write(to: crashed.appendingPathComponent(file.name))
        }
        func holders() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: crashed.path).sorted().filter { name in
                [UInt8](try Data(contentsOf: crashed.appendingPathComponent(name))).contains(bytes: Array(marker.utf8))
            }
        }
        #expect(try holders() == [StateStore.fileName + "-wal"], "control: the crash leaves the old page image in the WAL")
        let reopened = try StateStore(directory: crashed.path)
        #expect(try reopened.read { try $0.messages(device: ppmid) }.isEmpty)
        #expect(try holders() == [], "a file still holds the cleared message after the restart")
    }

    @Test("removing a device leaves no bytes of its messages once scrubbed")
    func removedDeviceGoneForGood() throws {
        let marker = "REMOVED-\(UUID().uuidString)"
        try store.write { tx throws in
            try tx.save(sampleDevice(), origin: .api)
            try tx.saveMessage(message(1, marker, at: 1), device: ppmid)
            try tx.saveConsumerSetting(device: ppmid, key: "name", value: marker)
        }
        let onDisk = try state.files().contains { $0.bytes.contains(bytes: Array(marker.utf8)) }
        #expect(onDisk, "the marker should be on disk before removing")
        try store.write { try $0.removeDevice(ppmid) }
        try store.scrub()
        for file in try state.files() {
            let holdsMarker = file.bytes.contains(bytes: Array(marker.utf8))
            #expect(!holdsMarker, "\(file.name) still holds the removed device's data")
        }
    }
}
