import SMETSCore
import SMETSWire
import Testing
@testable import SMETSDevices

@Suite("Prepayment")
struct PrepaymentTests {
    static let meter = EUI64("00-DB-12-34-56-78-00-02")!
    static let ppmid = EUI64("00-DB-12-34-56-78-00-05")!
    static let now = Timestamp(unixMillis: 1_800_000_000_000)
    static let machine = Prepayment(device: meter)
    static let utrn = Array("12345678901234500150".utf8)  // 150 pence

    static func topUp(_ code: [UInt8] = utrn, balance: Prepayment.Balance? = .initial, seen: Bool = false,
                      ppmid: (id: EUI64, seen: Bool)? = (PrepaymentTests.ppmid, false)) -> [Prepayment.Action] {
        machine.receive(.consumerTopUp(ConsumerTopUp(originatingDevice: 0x02, topUpCode: code), from: Self.ppmid,
                                       facts: .init(balance: balance, seenByMeter: seen, senderPPMID: ppmid, now: now)))
    }

    static func response(_ result: Prepayment.TopUpResult, value: Int32 = 0, credit: Int32) -> Prepayment.Action {
        .respond(.consumerTopUpResponse(ConsumerTopUpResponse(result: result.rawValue, topUpValue: value, sourceOfTopUp: 0x02, creditRemaining: credit)))
    }

    @Test("a UTRN's value is its last five digits, in pence; anything but 20 digits has none")
    func utrnValues() {
        #expect(Prepayment.value(ofUTRN: Self.utrn) == 150)
        #expect(Prepayment.value(ofUTRN: Array("00000000000000099999".utf8)) == 99_999)
        #expect(Prepayment.value(ofUTRN: Array("1234567890123450015".utf8)) == nil)
        #expect(Prepayment.value(ofUTRN: Array("1234567890123450015X".utf8)) == nil)
        #expect(Prepayment.value(ofUTRN: []) == nil)
    }

    @Test("an unseen valid UTRN raises the credit, enters the meter's and the PPMID's logs, and is published")
    func acceptedTopUp() {
        let record = Prepayment.TopUp(code: "12345678901234500150", amount: 150, time: Self.now, source: 0x02)
        #expect(Self.topUp() == [
            .persist(.balance(.init(credit: 1150, emergencyCredit: 500, debt: 0))),
            .persist(.topUp(record, device: Self.meter)),
            .persist(.topUp(record, device: Self.ppmid)),
            .event(.toppedUp(value: 150, from: Self.ppmid)),
            Self.response(.accepted, value: 150, credit: 1150),
        ])
        // A PPMID whose log already holds it, or a sender that is no PPMID, gets no second record.
        #expect(!Self.topUp(ppmid: (Self.ppmid, true)).contains(.persist(.topUp(record, device: Self.ppmid))))
        #expect(Self.topUp(ppmid: nil).filter { if case .persist(.topUp) = $0 { true } else { false } }.count == 1)
        // A meter with no balances yet starts from zero.
        #expect(Self.topUp(balance: nil).first == .persist(.balance(.init(credit: 150, emergencyCredit: 0, debt: 0))))
    }

    @Test("an invalid or already applied UTRN is refused with its result and the credit unchanged, nothing written")
    func refusedTopUps() {
        #expect(Self.topUp(Array("not a utrn".utf8)) == [Self.response(.rejectedInvalid, credit: 1000)])
        #expect(Self.topUp(seen: true) == [Self.response(.rejectedDuplicate, credit: 1000)])
        #expect(Self.topUp(Array("bad".utf8), balance: nil) == [Self.response(.rejectedInvalid, credit: 0)])
    }

    @Test("a WAN top-up (DUIS 2.2) takes the value the DCC decoded, not the UTRN's last digits; nil is invalid")
    func wanTopUp() {
        let dcc = EUI64("90-B3-D5-1F-30-00-00-02")!
        let code = "73951443011611684638"  // duis.md §6.11: 500 pence, whatever its last five digits say
        func wan(_ value: Int32?, balance: Prepayment.Balance? = .initial, seen: Bool = false) -> [Prepayment.Action] {
            Self.machine.receive(.wanTopUp(code: code, value: value, source: 0x00, from: dcc,
                                           facts: .init(balance: balance, seenByMeter: seen, senderPPMID: nil, now: Self.now)))
        }
        func answer(_ result: Prepayment.TopUpResult, value: Int32 = 0, credit: Int32) -> Prepayment.Action {
            .respond(.consumerTopUpResponse(ConsumerTopUpResponse(result: result.rawValue, topUpValue: value, sourceOfTopUp: 0x00, creditRemaining: credit)))
        }
        let record = Prepayment.TopUp(code: code, amount: 500, time: Self.now, source: 0x00)
        #expect(wan(500) == [
            .persist(.balance(.init(credit: 1500, emergencyCredit: 500, debt: 0))),
            .persist(.topUp(record, device: Self.meter)),
            .event(.toppedUp(value: 500, from: dcc)),
            answer(.accepted, value: 500, credit: 1500),
        ])
        #expect(wan(nil) == [answer(.rejectedInvalid, credit: 1000)])
        #expect(wan(500, seen: true) == [answer(.rejectedDuplicate, credit: 1000)])
        #expect(wan(500, balance: .init(credit: .max - 100, emergencyCredit: 0, debt: 0)) == [answer(.rejectedError, credit: .max - 100)])
        let input = Prepayment.Input.wanTopUp(code: code, value: 500, source: 0x00, from: dcc,
                                              facts: .init(balance: .initial, seenByMeter: false, senderPPMID: nil, now: Self.now))
        #expect(input.mayChangeStore)
        #expect(Self.machine.storeFailed(input) == [answer(.rejectedError, credit: 1000)])
    }

    @Test("a top-up the credit cannot hold is refused with the error result, not wrapped into debt")
    func overflowingTopUp() {
        let full = Prepayment.Balance(credit: .max - 100, emergencyCredit: 0, debt: 0)
        #expect(Self.topUp(balance: full) == [Self.response(.rejectedError, credit: .max - 100)])
    }

    @Test("a top-up the store cannot keep answers rejected-error with the credit as it was")
    func topUpStoreFailed() {
        let input = Prepayment.Input.consumerTopUp(ConsumerTopUp(originatingDevice: 0x02, topUpCode: Self.utrn), from: Self.ppmid,
                                                   facts: .init(balance: .initial, seenByMeter: false, senderPPMID: nil, now: Self.now))
        #expect(input.mayChangeStore)
        #expect(Self.machine.storeFailed(input) == [Self.response(.rejectedError, credit: 1000)])
    }

    @Test("the top-up log leaves out what came before the Change of Tenancy")
    func topUpLog() {
        let old = Prepayment.TopUp(code: "1", amount: 5, time: Timestamp(unixMillis: 1_000), source: 2)
        let new = Prepayment.TopUp(code: "2", amount: 7, time: Self.now, source: 0)
        let request = GetTopUpLog(latestEndTime: 0xFFFF_FFFF, numberOfRecords: 10)
        let all = Self.machine.receive(.getTopUpLog(request, records: [new, old], tenancyStart: nil))
        #expect(all == [.respond(.publishTopUpLog(PublishTopUpLog(topUps: [
            .init(topUpCode: Array("2".utf8), topUpAmount: 7, topUpTime: Self.now.zigbeeUTC),
            .init(topUpCode: Array("1".utf8), topUpAmount: 5, topUpTime: Timestamp(unixMillis: 1_000).zigbeeUTC),
        ])))])
        let since = Self.machine.receive(.getTopUpLog(request, records: [new, old], tenancyStart: Timestamp(unixMillis: 2_000)))
        #expect(since == [.respond(.publishTopUpLog(PublishTopUpLog(topUps: [.init(topUpCode: Array("2".utf8), topUpAmount: 7, topUpTime: Self.now.zigbeeUTC)])))])
        #expect(!Prepayment.Input.getTopUpLog(request, records: [], tenancyStart: nil).mayChangeStore)
        #expect(Self.machine.storeFailed(.getTopUpLog(request, records: [], tenancyStart: nil)) == [.respond(.status(.failure))])
    }

    @Test("log queries: 0xFFFFFFFF is up to now, otherwise no record after the time; the count limits")
    func logQueries() {
        let open = Prepayment.query(GetTopUpLog(latestEndTime: 0xFFFF_FFFF, numberOfRecords: 3))
        #expect(open.notAfter == nil && open.limit == 3)
        let bounded = Prepayment.query(GetDebtRepaymentLog(latestEndTime: Self.now.zigbeeUTC, numberOfDebts: 9, debtType: 0xFF))
        #expect(bounded.notAfter == Timestamp(zigbeeUTC: Self.now.zigbeeUTC) && bounded.limit == 9)
    }

    @Test("the debt log selects the debt type asked (0xFF: every type) and what came after the Change of Tenancy")
    func debtLog() {
        let one = Prepayment.DebtCollection(time: Self.now, amount: 10, debtType: 0, outstanding: 90)
        let two = Prepayment.DebtCollection(time: Self.now, amount: 20, debtType: 1, outstanding: 80)
        let old = Prepayment.DebtCollection(time: Timestamp(unixMillis: 0), amount: 30, debtType: 1, outstanding: 100)
        func collections(_ type: UInt8, since: Timestamp? = nil) -> [UInt32] {
            let actions = Self.machine.receive(.getDebtRepaymentLog(GetDebtRepaymentLog(latestEndTime: 0xFFFF_FFFF, numberOfDebts: 10, debtType: type),
                                                                    records: [one, two, old], tenancyStart: since))
            guard case .respond(.publishDebtLog(let log)) = actions.first else { return [] }
            return log.collections.map(\.amountCollected)
        }
        #expect(collections(0xFF) == [10, 20, 30])
        #expect(collections(1) == [20, 30])
        #expect(collections(1, since: Timestamp(unixMillis: 1)) == [20])
        #expect(collections(7).isEmpty)
    }

    @Test("prepayment attributes come from the balances; unknown ones and a meter without balances are unsupported")
    func attributes() {
        let ids: [UInt16] = [0x0000, PrepaymentAttribute.creditRemaining, PrepaymentAttribute.emergencyCreditRemaining, PrepaymentAttribute.accumulatedDebt, 0x0999]
        #expect(Self.machine.receive(.readAttributes(ids, balance: .init(credit: 12, emergencyCredit: 34, debt: 56))) == [.respond(.attributes([
            .value(0x0000, .bitmap16(1)), .value(PrepaymentAttribute.creditRemaining, .int32(12)),
            .value(PrepaymentAttribute.emergencyCreditRemaining, .int32(34)), .value(PrepaymentAttribute.accumulatedDebt, .int32(56)),
            .status(0x0999, .unsupportedAttribute),
        ]))])
        #expect(Self.machine.receive(.readAttributes([PrepaymentAttribute.creditRemaining], balance: nil))
            == [.respond(.attributes([.status(PrepaymentAttribute.creditRemaining, .unsupportedAttribute)]))])
        #expect(Self.machine.storeFailed(.readAttributes([1, 2], balance: nil)) == [.respond(.attributes([.status(1, .failure), .status(2, .failure)]))])
    }

    @Test("a PPMID acknowledges top-up answers, and keeps the debt collections it is sent that its log lacks")
    func ppmidClient() {
        let ppmid = Prepayment(device: Self.ppmid)
        let response = ConsumerTopUpResponse(result: 0, topUpValue: 150, sourceOfTopUp: 2, creditRemaining: 1150)
        #expect(ppmid.receive(.consumerTopUpResponse(response)) == [.respond(.status(.success))])
        #expect(ppmid.receive(.publishTopUpLog(PublishTopUpLog(topUps: []), held: [])) == [.respond(.status(.success))])
        let entry = PublishDebtLog.DebtCollection(collectionTime: Self.now.zigbeeUTC, amountCollected: 10, debtType: 1, outstandingDebt: 90)
        let collection = Prepayment.DebtCollection(time: Timestamp(zigbeeUTC: Self.now.zigbeeUTC), amount: 10, debtType: 1, outstanding: 90)
        let log = PublishDebtLog(collections: [entry, entry])
        #expect(ppmid.receive(.publishDebtLog(log, held: [])) == [.persist(.debtCollections([collection])), .respond(.status(.success))],
                "the same collection twice in one log is kept once")
        #expect(ppmid.receive(.publishDebtLog(log, held: [collection])) == [.respond(.status(.success))], "a log sent again adds nothing")
        #expect(ppmid.receive(.publishDebtLog(PublishDebtLog(collections: []), held: [])) == [.respond(.status(.success))])
        #expect(ppmid.storeFailed(.publishDebtLog(log, held: [])) == [.respond(.status(.failure))])
        #expect(Prepayment.Input.publishDebtLog(log, held: []).mayChangeStore && !Prepayment.Input.consumerTopUpResponse(response).mayChangeStore)
    }

    // SECMP0056 conclusions report (seed 003), "Modification Report Consultation responses": top-up
    // history is a function some PPMIDs add beyond SMETS; ours keeps the top-up log it is sent, so a
    // Change of Tenancy has a real log to clear.
    @Test("a PPMID keeps the top-ups of a meter's log that its own log lacks, each once")
    func ppmidKeepsTopUpLog() {
        let ppmid = Prepayment(device: Self.ppmid)
        let log = PublishTopUpLog(topUps: [
            .init(topUpCode: Array("11111111111111100100".utf8), topUpAmount: 100, topUpTime: Self.now.zigbeeUTC),
            .init(topUpCode: Array("22222222222222200200".utf8), topUpAmount: 200, topUpTime: Self.now.zigbeeUTC),
            .init(topUpCode: Array("22222222222222200200".utf8), topUpAmount: 200, topUpTime: Self.now.zigbeeUTC),
        ])
        let second = Prepayment.TopUp(code: "22222222222222200200", amount: 200, time: Timestamp(zigbeeUTC: Self.now.zigbeeUTC), source: 0x00)
        #expect(ppmid.receive(.publishTopUpLog(log, held: ["11111111111111100100"])) == [
            .persist(.topUp(second, device: Self.ppmid)), .respond(.status(.success)),
        ])
        #expect(ppmid.receive(.publishTopUpLog(log, held: ["11111111111111100100", "22222222222222200200"])) == [.respond(.status(.success))])
        #expect(ppmid.storeFailed(.publishTopUpLog(log, held: [])) == [.respond(.status(.failure))])
        #expect(Prepayment.Input.publishTopUpLog(log, held: []).mayChangeStore)
    }

    // SECMP0056 conclusions report (seed 003), "Subsequent Working Group discussions": debt-recovery
    // information is what some devices show; our meters fill the debt repayment log from real flows.
    @Test("a top-up recovers its share of the debt first, logged as a Debt 3 collection, the rest is credit")
    func topUpRecoversDebt() {
        let owing = Prepayment.Balance(credit: 1000, emergencyCredit: 500, debt: 100, debtPerDay: 20, recoveryPercent: 40)
        let actions = Self.topUp(balance: owing)
        // 40% of 150 is 60, all of it owed: 90 becomes credit.
        #expect(actions.first == .persist(.balance(.init(credit: 1090, emergencyCredit: 500, debt: 40, debtPerDay: 20, recoveryPercent: 40))))
        #expect(actions.contains(.persist(.debtCollections([.init(time: Self.now, amount: 60, debtType: Prepayment.paymentBasedDebtType, outstanding: 40)]))))
        #expect(actions.contains(.event(.debtRecovered(amount: 60, outstanding: 40))))
        #expect(actions.last == Self.response(.accepted, value: 150, credit: 1090), "the response names the whole top-up and the credit after")
        // No more than is owed is taken.
        let little = Prepayment.Balance(credit: 0, emergencyCredit: 0, debt: 5, recoveryPercent: 100)
        #expect(Self.topUp(balance: little).first == .persist(.balance(.init(credit: 145, emergencyCredit: 0, debt: 0, recoveryPercent: 100))))
        // Nothing owed, or no recovery share: no collection.
        for balance in [Prepayment.Balance(credit: 0, emergencyCredit: 0, debt: 0, recoveryPercent: 50),
                        Prepayment.Balance(credit: 0, emergencyCredit: 0, debt: 500, recoveryPercent: 0)] {
            #expect(!Self.topUp(balance: balance).contains { if case .persist(.debtCollections) = $0 { true } else { false } })
        }
    }

    @Test("each day that ended adds the time-based debt, clamped; a meter without one is not touched")
    func timeBasedDebtAccrues() {
        let accruing = Prepayment.Balance(credit: 1000, emergencyCredit: 500, debt: 10, debtPerDay: 25)
        #expect(Self.machine.receive(.daysEnded(3, balance: accruing)) == [
            .persist(.balance(.init(credit: 1000, emergencyCredit: 500, debt: 85, debtPerDay: 25))),
            .event(.debtAccrued(amount: 75, days: 3, outstanding: 85)),
        ])
        #expect(Self.machine.receive(.daysEnded(3, balance: .initial)).isEmpty)
        #expect(Self.machine.receive(.daysEnded(0, balance: accruing)).isEmpty)
        let huge = Prepayment.Balance(credit: 0, emergencyCredit: 0, debt: .max - 1, debtPerDay: Prepayment.maxDebt)
        #expect(Self.machine.receive(.daysEnded(1_000_000, balance: huge)).first == .persist(.balance(.init(credit: 0, emergencyCredit: 0, debt: .max, debtPerDay: Prepayment.maxDebt))))
        #expect(Self.machine.storeFailed(.daysEnded(1, balance: accruing)).isEmpty)
        #expect(Prepayment.Input.daysEnded(1, balance: accruing).mayChangeStore)
    }

    @Test("the supplier sets debt, daily debt and recovery share, each within its bounds, the rest unchanged")
    func configureDebt() {
        #expect(Self.machine.receive(.configureDebt(debt: 2000, perDay: nil, recoveryPercent: 25, balance: .initial)) == [
            .persist(.balance(.init(credit: 1000, emergencyCredit: 500, debt: 2000, recoveryPercent: 25))),
        ])
        #expect(Self.machine.receive(.configureDebt(debt: -5, perDay: .max, recoveryPercent: 200, balance: nil)) == [
            .persist(.balance(.init(credit: 0, emergencyCredit: 0, debt: 0, debtPerDay: Prepayment.maxDebt, recoveryPercent: 100))),
        ])
    }
}
