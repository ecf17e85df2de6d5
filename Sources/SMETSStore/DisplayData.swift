import GRDB
import SMETSCore

/// A supplier message a display holds (ZCL Messaging DisplayMessage).
public struct StoredMessage: Hashable, Sendable {
    public var messageID: UInt32
    public var control: UInt8
    public var startTime: UInt32
    public var durationMinutes: UInt16
    public var text: String
    public var receivedAt: Timestamp
    public var confirmedAt: Timestamp?

    public init(messageID: UInt32, control: UInt8, startTime: UInt32, durationMinutes: UInt16, text: String,
                receivedAt: Timestamp, confirmedAt: Timestamp? = nil) {
        self.messageID = messageID; self.control = control; self.startTime = startTime
        self.durationMinutes = durationMinutes; self.text = text; self.receivedAt = receivedAt; self.confirmedAt = confirmedAt
    }
}

public struct StoredTopUp: Hashable, Sendable {
    public var seq: Int64
    public var code: String
    public var amount: Int32
    public var time: Timestamp
    public var source: UInt8
    public init(seq: Int64, code: String, amount: Int32, time: Timestamp, source: UInt8) {
        self.seq = seq; self.code = code; self.amount = amount; self.time = time; self.source = source
    }
}

public struct StoredDebtRecord: Hashable, Sendable {
    public var seq: Int64
    public var time: Timestamp
    public var amount: UInt32
    public var debtType: UInt8
    public var outstanding: UInt32
    public init(seq: Int64, time: Timestamp, amount: UInt32, debtType: UInt8, outstanding: UInt32) {
        self.seq = seq; self.time = time; self.amount = amount; self.debtType = debtType; self.outstanding = outstanding
    }
}

public struct PrepaymentState: Hashable, Sendable {
    public var credit: Int32
    public var emergencyCredit: Int32
    public var debt: Int32
    /// Time-based debt added at the end of each day, and the share of a top-up (percent) that
    /// recovers debt.
    public var debtPerDay: Int32
    public var recoveryPercent: UInt8
    public init(credit: Int32, emergencyCredit: Int32, debt: Int32, debtPerDay: Int32 = 0, recoveryPercent: UInt8 = 0) {
        self.credit = credit; self.emergencyCredit = emergencyCredit; self.debt = debt
        self.debtPerDay = debtPerDay; self.recoveryPercent = recoveryPercent
    }
}

/// How many records of each category a device holds.
public struct DataCounts: Hashable, Sendable {
    public var consumptionDays = 0, messages = 0, topUps = 0, debtRecords = 0, consumerSettings = 0
    public init() {}
    public func count(of category: DataCategory) -> Int {
        switch category {
        case .consumptionHistory: consumptionDays
        case .consumerData: consumerSettings
        case .supplierMessages: messages
        case .topUpLog: topUps
        case .debtLog: debtRecords
        }
    }
}

extension StoreTransaction {
    private func key(_ id: EUI64) -> Int64 { Int64(bitPattern: id.rawValue) }

    // MARK: messages

    public func saveMessage(_ message: StoredMessage, device: EUI64) throws {
        try db.cachedStatement(sql: """
            INSERT INTO message (device, message_id, control, start_time, duration, text, received_at, confirmed_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(device, message_id) DO UPDATE SET control = excluded.control, start_time = excluded.start_time,
              duration = excluded.duration, text = excluded.text, received_at = excluded.received_at, confirmed_at = NULL
            """).execute(arguments: [key(device), Int64(message.messageID), Int(message.control), Int64(message.startTime),
                             Int(message.durationMinutes), message.text, message.receivedAt.unixMillis,
                             message.confirmedAt?.unixMillis])
    }

    public func messages(device: EUI64) throws -> [StoredMessage] {
        try Row.fetchAll(db, sql: "SELECT message_id, control, start_time, duration, text, received_at, confirmed_at FROM message WHERE device = ? ORDER BY received_at, message_id",
                         arguments: [key(device)]).map { row in
            StoredMessage(messageID: UInt32(truncatingIfNeeded: row[0] as Int64), control: UInt8(truncatingIfNeeded: row[1] as Int),
                          startTime: UInt32(truncatingIfNeeded: row[2] as Int64), durationMinutes: UInt16(truncatingIfNeeded: row[3] as Int),
                          text: row[4], receivedAt: Timestamp(unixMillis: row[5]),
                          confirmedAt: (row[6] as Int64?).map { Timestamp(unixMillis: $0) })
        }
    }

    /// Removes one message; true if it was there.
    @discardableResult
    public func deleteMessage(device: EUI64, messageID: UInt32) throws -> Bool {
        try db.execute(sql: "DELETE FROM message WHERE device = ? AND message_id = ?", arguments: [key(device), Int64(messageID)])
        return db.changesCount > 0
    }

    public func confirmMessage(device: EUI64, messageID: UInt32, at time: Timestamp) throws -> Bool {
        try db.cachedStatement(sql: "UPDATE message SET confirmed_at = ? WHERE device = ? AND message_id = ?").execute(
                       arguments: [time.unixMillis, key(device), Int64(messageID)])
        return db.changesCount > 0
    }

    // MARK: consumption history

    public func saveConsumptionDay(device: EUI64, day: Int64, amount: Int64) throws {
        let statement = try db.cachedStatement(sql: "INSERT INTO consumption_day (device, day, amount) VALUES (?, ?, ?) ON CONFLICT(device, day) DO UPDATE SET amount = excluded.amount")
        try statement.execute(arguments: [key(device), day, amount])
    }

    public func consumptionDays(device: EUI64, limit: Int = 1000) throws -> [(day: Int64, amount: Int64)] {
        try Row.fetchAll(db, sql: "SELECT day, amount FROM consumption_day WHERE device = ? ORDER BY day DESC LIMIT ?",
                         arguments: [key(device), limit]).map { (day: $0[0], amount: $0[1]) }
    }

    // MARK: top-ups and debt

    public func saveTopUp(device: EUI64, code: String, amount: Int32, time: Timestamp, source: UInt8) throws -> StoredTopUp {
        let seq = (try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM top_up WHERE device = ?", arguments: [key(device)]) ?? 0) + 1
        try db.cachedStatement(sql: "INSERT INTO top_up (device, seq, code, amount, time, source) VALUES (?, ?, ?, ?, ?, ?)").execute(
                       arguments: [key(device), seq, code, Int(amount), time.unixMillis, Int(source)])
        return StoredTopUp(seq: seq, code: code, amount: amount, time: time, source: source)
    }

    public func topUpExists(device: EUI64, code: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM top_up WHERE device = ? AND code = ?)", arguments: [key(device), code]) ?? false
    }

    /// The latest top-ups first, no later than `latest`.
    public func topUps(device: EUI64, notAfter latest: Timestamp? = nil, limit: Int = 1000) throws -> [StoredTopUp] {
        try Row.fetchAll(db, sql: "SELECT seq, code, amount, time, source FROM top_up WHERE device = ? AND time <= ? ORDER BY time DESC, seq DESC LIMIT ?",
                         arguments: [key(device), latest?.unixMillis ?? Int64.max, limit]).map {
            StoredTopUp(seq: $0[0], code: $0[1], amount: Int32(truncatingIfNeeded: $0[2] as Int64), time: Timestamp(unixMillis: $0[3]),
                        source: UInt8(truncatingIfNeeded: $0[4] as Int))
        }
    }

    public func saveDebtRecord(device: EUI64, time: Timestamp, amount: UInt32, debtType: UInt8, outstanding: UInt32) throws {
        let seq = (try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM debt_record WHERE device = ?", arguments: [key(device)]) ?? 0) + 1
        try db.cachedStatement(sql: "INSERT INTO debt_record (device, seq, time, amount, debt_type, outstanding) VALUES (?, ?, ?, ?, ?, ?)").execute(
                       arguments: [key(device), seq, time.unixMillis, Int64(amount), Int(debtType), Int64(outstanding)])
    }

    public func debtRecords(device: EUI64, notAfter latest: Timestamp? = nil, limit: Int = 1000) throws -> [StoredDebtRecord] {
        try Row.fetchAll(db, sql: "SELECT seq, time, amount, debt_type, outstanding FROM debt_record WHERE device = ? AND time <= ? ORDER BY time DESC, seq DESC LIMIT ?",
                         arguments: [key(device), latest?.unixMillis ?? Int64.max, limit]).map {
            StoredDebtRecord(seq: $0[0], time: Timestamp(unixMillis: $0[1]), amount: UInt32(truncatingIfNeeded: $0[2] as Int64),
                             debtType: UInt8(truncatingIfNeeded: $0[3] as Int), outstanding: UInt32(truncatingIfNeeded: $0[4] as Int64))
        }
    }

    /// A setting the consumer made on the display at `time` (Change of Tenancy clears those made
    /// up to its date).
    public func saveConsumerSetting(device: EUI64, key settingKey: String, value: String, at time: Timestamp = Timestamp(unixMillis: 0)) throws {
        try db.cachedStatement(sql: "INSERT INTO consumer_setting (device, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(device, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at").execute(
                       arguments: [key(device), settingKey, value, time.unixMillis])
    }

    public func consumerSettings(device: EUI64) throws -> [String: String] {
        var result: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT key, value FROM consumer_setting WHERE device = ?", arguments: [key(device)]) {
            result[row[0]] = row[1]
        }
        return result
    }

    // MARK: prepayment (meter side)

    public func prepayment(device: EUI64) throws -> PrepaymentState? {
        try Row.fetchOne(db, sql: "SELECT \(Self.prepaymentColumns) FROM prepayment WHERE device = ?", arguments: [key(device)]).map { Self.prepaymentState($0) }
    }

    /// The meters that accrue a time-based debt, with their state.
    public func debtAccruingMeters() throws -> [(device: EUI64, state: PrepaymentState)] {
        try Row.fetchAll(db, sql: "SELECT device, \(Self.prepaymentColumns) FROM prepayment WHERE debt_per_day > 0 ORDER BY device").map { row in
            (EUI64(UInt64(bitPattern: row[0] as Int64)), Self.prepaymentState(row, from: 1))
        }
    }

    static let prepaymentColumns = "credit, emergency_credit, debt, debt_per_day, recovery_percent"

    /// The state in `row`'s columns from `offset` on, in ``prepaymentColumns``' order.
    static func prepaymentState(_ row: Row, from offset: Int = 0) -> PrepaymentState {
        func column(_ index: Int) -> Int64 { row[offset + index] }
        return PrepaymentState(credit: Int32(truncatingIfNeeded: column(0)), emergencyCredit: Int32(truncatingIfNeeded: column(1)),
                               debt: Int32(truncatingIfNeeded: column(2)), debtPerDay: Int32(truncatingIfNeeded: column(3)),
                               recoveryPercent: UInt8(truncatingIfNeeded: column(4)))
    }

    public func savePrepayment(_ state: PrepaymentState, device: EUI64) throws {
        // Cached: every top-up and every generated meter saves one, and compiling it cost as much as running it.
        try db.cachedStatement(sql: """
            INSERT INTO prepayment (device, credit, emergency_credit, debt, debt_per_day, recovery_percent) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT(device) DO UPDATE SET credit = excluded.credit, emergency_credit = excluded.emergency_credit, debt = excluded.debt,
            debt_per_day = excluded.debt_per_day, recovery_percent = excluded.recovery_percent
            """).execute(arguments: [key(device), Int64(state.credit), Int64(state.emergencyCredit), Int64(state.debt), Int64(state.debtPerDay),
                             Int64(state.recoveryPercent)])
    }

    // MARK: counts and clearing

    public func dataCounts(device: EUI64) throws -> DataCounts {
        var counts = DataCounts()
        let id = key(device)
        counts.consumptionDays = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM consumption_day WHERE device = ?", arguments: [id]) ?? 0
        counts.messages = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message WHERE device = ?", arguments: [id]) ?? 0
        counts.topUps = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM top_up WHERE device = ?", arguments: [id]) ?? 0
        counts.debtRecords = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM debt_record WHERE device = ?", arguments: [id]) ?? 0
        counts.consumerSettings = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM consumer_setting WHERE device = ?", arguments: [id]) ?? 0
        return counts
    }

    /// Deletes every record of `categories` the device holds (secure_delete zeroes them); returns how
    /// many of each went.
    public func clear(_ categories: Set<DataCategory>, device: EUI64) throws -> [DataCategory: Int] {
        try clear([(device, categories)])[device] ?? [:]
    }

    /// `clear` for many devices in the caller's one transaction (a Change of Tenancy over thousands
    /// of premises): table by table, so that each B-tree's pages stay in the cache while its devices'
    /// rows go, one cached `DELETE ... WHERE device = ?` per device, so that each device's count is
    /// known. A device listed twice has its counts added up.
    ///
    /// With `cutoff`, only what was recorded at or before it goes (SECMP0056: a Change of Tenancy at T
    /// clears the prior occupant's data, never the new occupant's after T). The consumption day that
    /// contains T is split: `dayAfter` gives that day's consumption after T for a device, which
    /// replaces the stored total (nil leaves the row to be deleted).
    public func clear(_ plans: [(device: EUI64, categories: Set<DataCategory>)], recordedUpTo cutoff: Timestamp? = nil,
                      dayAfter: (EUI64) -> Int64? = { _ in nil }) throws -> [EUI64: [DataCategory: Int]] {
        var removed: [EUI64: [DataCategory: Int]] = [:]
        removed.reserveCapacity(plans.count)
        let cutoffMillis = cutoff?.unixMillis ?? Int64.max
        let cutoffDay = cutoff?.dayNumber ?? Int64.max
        for category in DataCategory.allCases.sorted(by: { $0.rawValue < $1.rawValue }) {
            // Cached: compiling the statement for every device cost as much as the deletes themselves.
            let sql = switch category {
            case .consumptionHistory: "DELETE FROM consumption_day WHERE device = ? AND day < ?"
            case .consumerData: "DELETE FROM consumer_setting WHERE device = ? AND updated_at <= ?"
            case .supplierMessages: "DELETE FROM message WHERE device = ? AND received_at <= ?"
            case .topUpLog: "DELETE FROM top_up WHERE device = ? AND time <= ?"
            case .debtLog: "DELETE FROM debt_record WHERE device = ? AND time <= ?"
            }
            let delete = try db.cachedStatement(sql: sql)
            let split = category == .consumptionHistory && cutoff != nil
                ? try db.cachedStatement(sql: "UPDATE consumption_day SET amount = ? WHERE device = ? AND day = ?") : nil
            let dropSplitDay = category == .consumptionHistory && cutoff != nil
                ? try db.cachedStatement(sql: "DELETE FROM consumption_day WHERE device = ? AND day = ?") : nil
            for (device, categories) in plans where categories.contains(category) {
                try delete.execute(arguments: [key(device), category == .consumptionHistory ? cutoffDay : cutoffMillis])
                var count = db.changesCount
                if let split, let dropSplitDay {
                    if let after = dayAfter(device) {
                        try split.execute(arguments: [after, key(device), cutoffDay])
                    } else {
                        try dropSplitDay.execute(arguments: [key(device), cutoffDay])
                        count += db.changesCount
                    }
                }
                removed[device, default: [:]][category, default: 0] += count
            }
        }
        return removed
    }
}

extension StoreTransaction {
    /// Rolls off history older than `day`.
    public func pruneConsumption(device: EUI64, before day: Int64) throws {
        try db.execute(sql: "DELETE FROM consumption_day WHERE device = ? AND day < ?", arguments: [Int64(bitPattern: device.rawValue), day])
    }
}
