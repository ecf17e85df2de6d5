import SMETSCore
import SMETSWire

/// The Prepayment cluster of one device: the server side of a meter (ESME or GPF: credit, top-ups
/// by UTRN, the top-up and debt logs) and the client side of a PPMID (the answers to its own top-ups,
/// the debt log it keeps).
///
/// A value with no state of its own: a meter's credit and logs are durable, so the executor reads
/// what an input needs (the ``Facts``) inside its store transaction, asks the machine, commits the
/// ``Change``s of the answer in that same transaction, then sends and publishes. The executor's contract:
/// - Every ``Action/persist(_:)`` of one batch is committed in one transaction before the batch's
///   reply is sent or its events published.
/// - When that commit fails, or the store cannot be read for the facts, the executor performs
///   ``storeFailed(_:)`` instead: the answer a meter gives when it cannot keep what it was asked
///   to (ConsumerTopUpResponse "rejected, error" for a top-up, a FAILURE Default Response otherwise).
public struct Prepayment: Sendable, Hashable {
    /// A meter's balances, in pence (ZCL int32), and how it accrues and recovers debt.
    public struct Balance: Sendable, Hashable {
        public var credit: Int32
        public var emergencyCredit: Int32
        /// AccumulatedDebt: what the consumer owes, never below 0.
        public var debt: Int32
        /// Time-based debt: what the meter adds to ``debt`` at the end of each day on the virtual clock.
        public var debtPerDay: Int32
        /// Payment-based recovery: the share of each top-up, in percent, that goes to ``debt``
        /// before the rest becomes credit.
        public var recoveryPercent: UInt8
        public init(credit: Int32, emergencyCredit: Int32, debt: Int32, debtPerDay: Int32 = 0, recoveryPercent: UInt8 = 0) {
            self.credit = credit; self.emergencyCredit = emergencyCredit; self.debt = debt
            self.debtPerDay = debtPerDay; self.recoveryPercent = recoveryPercent
        }

        /// What a new meter holds: a small credit and the emergency credit.
        public static let initial = Balance(credit: 1000, emergencyCredit: 500, debt: 0)
    }

    /// One accepted top-up, as a meter's (and its PPMID's) log keeps it.
    public struct TopUp: Sendable, Hashable {
        public var code: String
        public var amount: Int32
        public var time: Timestamp
        /// The ZCL OriginatingDevice of the ConsumerTopUp (0x00 ESME, 0x01 GSME, 0x02 IHD/PPMID).
        public var source: UInt8
        public init(code: String, amount: Int32, time: Timestamp, source: UInt8) {
            self.code = code; self.amount = amount; self.time = time; self.source = source
        }
    }

    /// One debt collection, as a debt log keeps it.
    public struct DebtCollection: Sendable, Hashable {
        public var time: Timestamp
        public var amount: UInt32
        public var debtType: UInt8
        public var outstanding: UInt32
        public init(time: Timestamp, amount: UInt32, debtType: UInt8, outstanding: UInt32) {
            self.time = time; self.amount = amount; self.debtType = debtType; self.outstanding = outstanding
        }
    }

    /// The ZCL debt type of a collection: time-based debts are Debt 1 and 2, payment-based
    /// recovery (a share of each top-up) is Debt 3.
    public static let paymentBasedDebtType: UInt8 = 0x02

    /// The most a supplier may set as debt or as the daily time-based debt, in pence: far inside
    /// int32, so that a year of accrual on the virtual clock cannot wrap.
    public static let maxDebt: Int32 = 10_000_000

    /// ConsumerTopUpResponse's ResultType.
    public enum TopUpResult: UInt8, Sendable, Hashable {
        case accepted = 0x00, rejectedInvalid = 0x01, rejectedDuplicate = 0x02, rejectedError = 0x03
    }

    /// The Prepayment commands a device takes, decoded.
    public enum Command: Sendable, Hashable {
        // Server side (a meter).
        case consumerTopUp(ConsumerTopUp)
        case getTopUpLog(GetTopUpLog)
        case getDebtRepaymentLog(GetDebtRepaymentLog)
        // Client side (a PPMID).
        case consumerTopUpResponse(ConsumerTopUpResponse)
        case publishTopUpLog(PublishTopUpLog)
        case publishDebtLog(PublishDebtLog)
    }

    /// What the executor read from the store for a top-up, inside the transaction that commits it.
    public struct TopUpFacts: Sendable, Hashable {
        /// The meter's balances; nil when it has none yet (it starts from zero).
        public var balance: Balance?
        /// Whether the meter already applied this UTRN.
        public var seenByMeter: Bool
        /// The PPMID that sent the top-up and whether its own log already holds this UTRN; nil when
        /// the sender is not a PPMID of ours.
        public var senderPPMID: (id: EUI64, seen: Bool)?
        public var now: Timestamp

        public init(balance: Balance?, seenByMeter: Bool, senderPPMID: (id: EUI64, seen: Bool)?, now: Timestamp) {
            self.balance = balance; self.seenByMeter = seenByMeter; self.senderPPMID = senderPPMID; self.now = now
        }

        public static func == (a: Self, b: Self) -> Bool {
            a.balance == b.balance && a.seenByMeter == b.seenByMeter && a.now == b.now
                && a.senderPPMID?.id == b.senderPPMID?.id && a.senderPPMID?.seen == b.senderPPMID?.seen
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(balance); hasher.combine(seenByMeter); hasher.combine(now)
            hasher.combine(senderPPMID?.id); hasher.combine(senderPPMID?.seen)
        }
    }

    public enum Input: Sendable, Hashable {
        /// ConsumerTopUp at the meter, from `sender`.
        case consumerTopUp(ConsumerTopUp, from: EUI64, facts: TopUpFacts)
        /// A top-up the supplier sent over the WAN (DUIS 2.2, GBCS CS01a/b), from the DCC `sender`:
        /// `value` (pence) is what the UTRN's token carries, nil when the UTRN failed its checks;
        /// `source` is the OriginatingDevice the logs record (0x00 ESME, 0x01 GSME).
        case wanTopUp(code: String, value: Int32?, source: UInt8, from: EUI64, facts: TopUpFacts)
        /// GetTopUpLog at the meter, with the records the store returned for ``query(_:)-(GetTopUpLog)``
        /// (newest first) and the start of the current tenancy, if it changed.
        case getTopUpLog(GetTopUpLog, records: [TopUp], tenancyStart: Timestamp?)
        /// GetDebtRepaymentLog at the meter, likewise.
        case getDebtRepaymentLog(GetDebtRepaymentLog, records: [DebtCollection], tenancyStart: Timestamp?)
        /// Read Attributes of the Prepayment cluster at the meter, with its balances (nil: none kept).
        case readAttributes([UInt16], balance: Balance?)
        /// A PPMID's own top-up was answered.
        case consumerTopUpResponse(ConsumerTopUpResponse)
        /// A PPMID received a meter's top-up log: it keeps the top-ups its log does not hold
        /// (`held`: the UTRNs it holds of those in the log).
        case publishTopUpLog(PublishTopUpLog, held: Set<String>)
        /// A PPMID received a meter's debt log: it keeps the collections its log does not hold.
        case publishDebtLog(PublishDebtLog, held: Set<DebtCollection>)
        /// `days` days ended on the virtual clock: a meter with a time-based debt accrues it.
        case daysEnded(Int64, balance: Balance)
        /// The supplier sets the meter's debt and how it accrues and is recovered (nil: unchanged).
        case configureDebt(debt: Int32?, perDay: Int32?, recoveryPercent: UInt8?, balance: Balance?)

        /// Whether this input's batch can hold a ``Action/persist(_:)``: only such an input needs
        /// a writer's transaction.
        public var mayChangeStore: Bool {
            switch self {
            case .consumerTopUp, .wanTopUp, .publishTopUpLog, .publishDebtLog, .daysEnded, .configureDebt: true
            case .getTopUpLog, .getDebtRepaymentLog, .readAttributes, .consumerTopUpResponse: false
            }
        }
    }

    /// A durable change of the device's (or, for a top-up, its PPMID's) prepayment data.
    public enum Change: Sendable, Hashable {
        /// The meter's balances become these.
        case balance(Balance)
        /// `topUp` enters `device`'s top-up log (the meter's, or the PPMID's that sent it).
        case topUp(TopUp, device: EUI64)
        /// The debt collections enter the device's debt log.
        case debtCollections([DebtCollection])
    }

    public enum Event: Sendable, Hashable {
        /// The meter accepted a top-up of `value` pence sent by `from`.
        case toppedUp(value: Int32, from: EUI64)
        /// The meter took `amount` pence of a top-up for its debt; `outstanding` is left.
        case debtRecovered(amount: Int32, outstanding: Int32)
        /// The meter added `amount` pence of time-based debt for `days` days.
        case debtAccrued(amount: Int32, days: Int64, outstanding: Int32)
    }

    public enum Action: Sendable, Hashable {
        case persist(Change)
        case respond(ZCLReply)
        case event(Event)
    }

    /// The device this cluster belongs to.
    public let device: EUI64

    public init(device: EUI64) { self.device = device }

    /// The value of a UTRN as the emulator reads it: 20 decimal digits whose last 5 are the value in
    /// pence; nil for anything else. (A real UTRN is encrypted to the meter; the emulator needs only
    /// a value and uniqueness.)
    public static func value(ofUTRN code: [UInt8]) -> Int32? {
        guard code.count == 20, code.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return code.suffix(5).reduce(0) { $0 * 10 + Int32($1 - 0x30) }
    }

    /// The store query a log request needs: no records after `notAfter` (nil: up to now), at most `limit`.
    public static func query(_ request: GetTopUpLog) -> (notAfter: Timestamp?, limit: Int) {
        (request.latestEndTime == 0xFFFF_FFFF ? nil : Timestamp(zigbeeUTC: request.latestEndTime), Int(request.numberOfRecords))
    }

    public static func query(_ request: GetDebtRepaymentLog) -> (notAfter: Timestamp?, limit: Int) {
        (request.latestEndTime == 0xFFFF_FFFF ? nil : Timestamp(zigbeeUTC: request.latestEndTime), Int(request.numberOfDebts))
    }

    /// What the device does with one input.
    public func receive(_ input: Input) -> [Action] {
        switch input {
        case let .consumerTopUp(topUp, sender, facts):
            return self.topUp(code: topUp.topUpCode, value: Self.value(ofUTRN: topUp.topUpCode), source: topUp.originatingDevice, from: sender, facts: facts)
        case let .wanTopUp(code, value, source, sender, facts):
            return self.topUp(code: Array(code.utf8), value: value, source: source, from: sender, facts: facts)
        case let .getTopUpLog(_, records, since):
            let kept = records.filter { since == nil || $0.time >= since! }
            return [.respond(.publishTopUpLog(PublishTopUpLog(topUps: kept.map {
                .init(topUpCode: Array($0.code.utf8), topUpAmount: $0.amount, topUpTime: $0.time.zigbeeUTC)
            })))]
        case let .getDebtRepaymentLog(request, records, since):
            // Debt type 0xFF asks for every type.
            let kept = records.filter { (since == nil || $0.time >= since!) && (request.debtType == 0xFF || $0.debtType == request.debtType) }
            return [.respond(.publishDebtLog(PublishDebtLog(collections: kept.map {
                .init(collectionTime: $0.time.zigbeeUTC, amountCollected: $0.amount, debtType: $0.debtType, outstandingDebt: $0.outstanding)
            })))]
        case let .readAttributes(ids, balance):
            return [.respond(.attributes(ids.map { Self.attribute($0, balance: balance) }))]
        case .consumerTopUpResponse:
            // A PPMID shows the outcome; the top-up itself was logged when the meter took it.
            return [.respond(.status(.success))]
        case let .publishTopUpLog(log, held):
            return keep(log, held: held)
        case let .publishDebtLog(log, held):
            var seen = held
            let collections = log.collections.map {
                DebtCollection(time: Timestamp(zigbeeUTC: $0.collectionTime), amount: $0.amountCollected, debtType: $0.debtType, outstanding: $0.outstandingDebt)
            }.filter { seen.insert($0).inserted }
            guard !collections.isEmpty else { return [.respond(.status(.success))] }
            return [.persist(.debtCollections(collections)), .respond(.status(.success))]
        case let .daysEnded(days, balance):
            guard days > 0, balance.debtPerDay > 0 else { return [] }
            var accrued = balance
            let (product, overflow) = Int64(balance.debtPerDay).multipliedReportingOverflow(by: days)
            accrued.debt = Int32(clamping: Int64(balance.debt) + (overflow ? Int64(Int32.max) : min(product, Int64(Int32.max))))
            let added = Int32(clamping: Int64(accrued.debt) - Int64(balance.debt))
            return [.persist(.balance(accrued)), .event(.debtAccrued(amount: added, days: days, outstanding: accrued.debt))]
        case let .configureDebt(debt, perDay, percent, balance):
            var configured = balance ?? Balance(credit: 0, emergencyCredit: 0, debt: 0)
            if let debt { configured.debt = min(max(0, debt), Self.maxDebt) }
            if let perDay { configured.debtPerDay = min(max(0, perDay), Self.maxDebt) }
            if let percent { configured.recoveryPercent = min(percent, 100) }
            return [.persist(.balance(configured))]
        }
    }

    /// A PPMID keeps the top-ups of a meter's log that its own log lacks (its own top-ups are
    /// there already: they were logged when the meter took them). The meter's log does not say
    /// which device sent a top-up; the PPMID records the meter (0x00) as their source.
    private func keep(_ log: PublishTopUpLog, held: Set<String>) -> [Action] {
        var seen = held
        var actions: [Action] = []
        for entry in log.topUps {
            let code = String(decoding: entry.topUpCode, as: UTF8.self)
            guard seen.insert(code).inserted else { continue }
            actions.append(.persist(.topUp(TopUp(code: code, amount: entry.topUpAmount, time: Timestamp(zigbeeUTC: entry.topUpTime), source: 0x00), device: device)))
        }
        return actions + [.respond(.status(.success))]
    }

    /// What the device answers instead of `input`'s batch when the store could not be read for its
    /// facts or could not commit its changes: nothing is kept, nothing published.
    public func storeFailed(_ input: Input) -> [Action] {
        switch input {
        case let .consumerTopUp(topUp, _, facts):
            // The command's own error result; the credit is what it was before (nothing was written).
            return [.respond(.consumerTopUpResponse(ConsumerTopUpResponse(
                result: TopUpResult.rejectedError.rawValue, topUpValue: 0, sourceOfTopUp: topUp.originatingDevice,
                creditRemaining: facts.balance?.credit ?? 0)))]
        case let .wanTopUp(_, _, source, _, facts):
            return [.respond(.consumerTopUpResponse(ConsumerTopUpResponse(
                result: TopUpResult.rejectedError.rawValue, topUpValue: 0, sourceOfTopUp: source, creditRemaining: facts.balance?.credit ?? 0)))]
        case let .readAttributes(ids, _):
            return [.respond(.attributes(ids.map { .status($0, .failure) }))]
        case .getTopUpLog, .getDebtRepaymentLog, .consumerTopUpResponse, .publishTopUpLog, .publishDebtLog:
            return [.respond(.status(.failure))]
        case .daysEnded, .configureDebt:
            // No frame to answer: the executor reports the failure (a job retries, a control call errs).
            return []
        }
    }

    /// A top-up of `value` pence (nil: the UTRN is invalid), over the HAN or the WAN alike.
    private func topUp(code codeBytes: [UInt8], value: Int32?, source: UInt8, from sender: EUI64, facts: TopUpFacts) -> [Action] {
        let credit = facts.balance?.credit ?? 0
        func response(_ result: TopUpResult, value: Int32 = 0, credit: Int32) -> Action {
            .respond(.consumerTopUpResponse(ConsumerTopUpResponse(result: result.rawValue, topUpValue: value,
                                                                  sourceOfTopUp: source, creditRemaining: credit)))
        }
        guard let value, value >= 0 else { return [response(.rejectedInvalid, credit: credit)] }
        if facts.seenByMeter { return [response(.rejectedDuplicate, credit: credit)] }
        var balance = facts.balance ?? Balance(credit: 0, emergencyCredit: 0, debt: 0)
        // Payment-based recovery: the meter's share of the top-up goes to the debt first.
        let recovered = max(0, min(balance.debt, Int32(Int64(value) * Int64(min(balance.recoveryPercent, 100)) / 100)))
        // A credit the meter cannot hold is refused, not wrapped round to a debt.
        let (raised, overflow) = balance.credit.addingReportingOverflow(value - recovered)
        guard !overflow else { return [response(.rejectedError, credit: credit)] }
        balance.credit = raised
        balance.debt -= recovered
        let code = String(decoding: codeBytes, as: UTF8.self)
        let record = TopUp(code: code, amount: value, time: facts.now, source: source)
        var actions: [Action] = [.persist(.balance(balance)), .persist(.topUp(record, device: device))]
        if recovered > 0 {
            actions.append(.persist(.debtCollections([DebtCollection(time: facts.now, amount: UInt32(recovered), debtType: Self.paymentBasedDebtType,
                                                                     outstanding: UInt32(balance.debt))])))
        }
        if let ppmid = facts.senderPPMID, !ppmid.seen, ppmid.id != device {
            actions.append(.persist(.topUp(record, device: ppmid.id)))
        }
        actions.append(.event(.toppedUp(value: value, from: sender)))
        if recovered > 0 { actions.append(.event(.debtRecovered(amount: recovered, outstanding: balance.debt))) }
        actions.append(response(.accepted, value: value, credit: raised))
        return actions
    }

    /// A Prepayment attribute of a meter with `balance` (nil: it keeps none, so none is supported).
    static func attribute(_ id: UInt16, balance: Balance?) -> ReadAttributesResponse.Record {
        guard let balance else { return .status(id, .unsupportedAttribute) }
        switch id {
        case 0x0000: return .value(id, .bitmap16(0x0001))  // PaymentControlConfiguration: prepayment mode
        case PrepaymentAttribute.creditRemaining: return .value(id, .int32(balance.credit))
        case PrepaymentAttribute.emergencyCreditRemaining: return .value(id, .int32(balance.emergencyCredit))
        case PrepaymentAttribute.accumulatedDebt: return .value(id, .int32(balance.debt))
        default: return .status(id, .unsupportedAttribute)
        }
    }
}
