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

    @Test("a PPMID acknowledges top-up answers and logs, and keeps the debt collections it is sent")
    func ppmidClient() {
        let ppmid = Prepayment(device: Self.ppmid)
        let response = ConsumerTopUpResponse(result: 0, topUpValue: 150, sourceOfTopUp: 2, creditRemaining: 1150)
        #expect(ppmid.receive(.consumerTopUpResponse(response)) == [.respond(.status(.success))])
        #expect(ppmid.receive(.publishTopUpLog(PublishTopUpLog(topUps: []))) == [.respond(.status(.success))])
        let log = PublishDebtLog(collections: [.init(collectionTime: Self.now.zigbeeUTC, amountCollected: 10, debtType: 1, outstandingDebt: 90)])
        #expect(ppmid.receive(.publishDebtLog(log)) == [
            .persist(.debtCollections([.init(time: Timestamp(zigbeeUTC: Self.now.zigbeeUTC), amount: 10, debtType: 1, outstanding: 90)])),
            .respond(.status(.success)),
        ])
        #expect(ppmid.receive(.publishDebtLog(PublishDebtLog(collections: []))) == [.respond(.status(.success))])
        #expect(ppmid.storeFailed(.publishDebtLog(log)) == [.respond(.status(.failure))])
        #expect(Prepayment.Input.publishDebtLog(log).mayChangeStore && !Prepayment.Input.consumerTopUpResponse(response).mayChangeStore)
    }
}
