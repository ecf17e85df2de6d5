import Testing
@testable import SMETSCore

@Suite("Schedule (min-heap of jobs)")
struct ScheduleTests {
    func job(_ id: Int64, at seconds: Int64) -> ScheduledJob {
        ScheduledJob(id: id, due: Timestamp(unixSeconds: seconds), kind: "test", payload: "{\"id\":\(id)}")
    }

    @Test("jobs pop earliest first, ties by id, whatever the insertion order")
    func order() {
        var schedule = Schedule([job(5, at: 30), job(2, at: 10), job(9, at: 20), job(1, at: 30), job(3, at: 10), job(4, at: 20)])
        #expect(schedule.count == 6)
        #expect(schedule.next?.id == 2)
        let due = schedule.popDue(at: Timestamp(unixSeconds: 100))
        #expect(due.map(\.id) == [2, 3, 4, 9, 1, 5])
        #expect(schedule.count == 0)
        #expect(schedule.next == nil)
    }

    @Test("a job due exactly now is due; one a millisecond later is not")
    func boundary() {
        var schedule = Schedule()
        schedule.insert(job(1, at: 10))
        schedule.insert(ScheduledJob(id: 2, due: Timestamp(unixMillis: 10_001), kind: "test", payload: ""))
        #expect(schedule.popDue(at: Timestamp(unixMillis: 9_999)).isEmpty)
        #expect(schedule.popDue(at: Timestamp(unixSeconds: 10)).map(\.id) == [1])
        #expect(schedule.count == 1)
        #expect(schedule.next?.id == 2)
        #expect(schedule.popDue(at: Timestamp(unixMillis: 10_001)).map(\.id) == [2])
    }

    @Test("popDue leaves later jobs in place")
    func partial() {
        var schedule = Schedule([job(1, at: 10), job(2, at: 20), job(3, at: 30)])
        #expect(schedule.popDue(at: Timestamp(unixSeconds: 25)).map(\.id) == [1, 2])
        #expect(schedule.next?.id == 3)
        schedule.insert(job(4, at: 5))
        #expect(schedule.next?.id == 4)
        #expect(schedule.popDue(at: Timestamp(unixSeconds: 30)).map(\.id) == [4, 3])
    }

    @Test("remove(id:) takes out one job and keeps the heap in order")
    func remove() {
        var schedule = Schedule([job(1, at: 10), job(2, at: 20), job(3, at: 30), job(4, at: 40)])
        schedule.remove(id: 1)
        #expect(schedule.count == 3)
        #expect(schedule.next?.id == 2)
        schedule.remove(id: 3)
        schedule.remove(id: 99)
        #expect(schedule.count == 2)
        #expect(schedule.popDue(at: Timestamp(unixSeconds: 100)).map(\.id) == [2, 4])
    }

    @Test("random jobs pop in (due, id) order", arguments: [UInt64(1), 2, 3, 42])
    func random(seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        var jobs: [ScheduledJob] = []
        for id in 0..<500 { jobs.append(job(Int64(id), at: Int64(generator.next() % 50))) }
        jobs.shuffle(using: &generator)
        var schedule = Schedule()
        for job in jobs { schedule.insert(job) }
        var removed: Set<Int64> = []
        for _ in 0..<50 {
            let id = Int64(generator.next() % 500)
            schedule.remove(id: id)
            removed.insert(id)
        }
        #expect(schedule.count == 500 - removed.count)
        var popped: [ScheduledJob] = []
        for second in stride(from: Int64(0), through: 50, by: 7) { popped += schedule.popDue(at: Timestamp(unixSeconds: second)) }
        let expected = jobs.filter { !removed.contains($0.id) }
            .sorted { $0.due == $1.due ? $0.id < $1.id : $0.due < $1.due }
        #expect(popped == expected)
        #expect(schedule.count == 0)
    }
}

@Suite("Change of Tenancy clearing rules (SECMP0056)")
struct TenancyRulesTests {
    @Test("each category has its ZCL tenancy change control bit", arguments: [
        (DataCategory.consumptionHistory, 8), (.consumerData, 9), (.supplierMessages, 10), (.topUpLog, 13), (.debtLog, 14),
    ])
    func bit(category: DataCategory, bit: Int) {
        #expect(category.tenancyControlBit == bit)
        let all = Set(DataCategory.allCases)
        #expect(TenancyRules.categoriesToClear(control: UInt32(1) << UInt32(bit), keeps: all) == [category])
        // A device that does not keep the category clears nothing for that bit.
        #expect(TenancyRules.categoriesToClear(control: UInt32(1) << UInt32(bit), keeps: all.subtracting([category])).isEmpty)
    }

    @Test("bits that select no occupant data clear nothing")
    func otherBits() {
        let all = Set(DataCategory.allCases)
        for bit in 0..<32 where ![8, 9, 10, 13, 14].contains(bit) {
            #expect(TenancyRules.categoriesToClear(control: UInt32(1) << UInt32(bit), keeps: all).isEmpty, "bit \(bit)")
        }
        #expect(TenancyRules.categoriesToClear(control: 0, keeps: all).isEmpty)
    }

    @Test("the clear-everything bitmap is bits 8, 9, 10, 13 and 14")
    func clearAll() {
        #expect(TenancyRules.clearAllOccupantData == 0x6700)
        #expect(TenancyRules.categoriesToClear(control: TenancyRules.clearAllOccupantData, keeps: Set(DataCategory.allCases)) == Set(DataCategory.allCases))
        #expect(TenancyRules.categoriesToClear(control: .max, keeps: Set(DataCategory.allCases)) == Set(DataCategory.allCases))
    }

    @Test("SECMP0056: a meter clears its copies of the supplier's messages with bit 10 only")
    func meterShare() {
        #expect(TenancyRules.meterCategoriesToClear(control: 1 << 10) == [.supplierMessages])
        #expect(TenancyRules.meterCategoriesToClear(control: TenancyRules.clearAllOccupantData) == [.supplierMessages])
        #expect(TenancyRules.meterCategoriesToClear(control: 1 << 8 | 1 << 13 | 1 << 14).isEmpty)
    }

    @Test("a model keeps only some categories: only those are cleared")
    func modelKeepsSome() throws {
        let ppmid = try shippedModel("brightview-ppmid")
        #expect(ppmid.keepsSet == [.consumptionHistory, .supplierMessages, .topUpLog])
        #expect(TenancyRules.categoriesToClear(control: TenancyRules.clearAllOccupantData, keeps: ppmid.keepsSet) == ppmid.keepsSet)
        // Bits 10 and 14: supplier messages (kept) and debt log (not kept).
        #expect(TenancyRules.categoriesToClear(control: 1 << 10 | 1 << 14, keeps: ppmid.keepsSet) == [.supplierMessages])

        let ihd = try shippedModel("brightview-ihd")
        #expect(TenancyRules.categoriesToClear(control: 1 << 13 | 1 << 14, keeps: ihd.keepsSet).isEmpty)
        #expect(TenancyRules.categoriesToClear(control: 1 << 8 | 1 << 9, keeps: ihd.keepsSet) == [.consumptionHistory, .consumerData])

        let esme = try shippedModel("acme-esme")
        #expect(TenancyRules.categoriesToClear(control: .max, keeps: esme.keepsSet).isEmpty)
    }
}
