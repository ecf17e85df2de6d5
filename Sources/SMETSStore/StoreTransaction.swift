import GRDB
import SMETSCore

/// The typed operations of one transaction. Only `StateStore.write`/`read` hand one out.
public struct StoreTransaction {
    let db: Database

    // MARK: meta

    public func meta(_ key: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
    }

    public func setMeta(_ key: String, _ value: String) throws {
        try db.cachedStatement(sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").execute(
                       arguments: [key, value])
    }

    // MARK: premises

    public func upsertPremises(id: String, region: CSPRegion, origin: DeviceOrigin) throws {
        try db.cachedStatement(sql: "INSERT INTO premises (id, region, origin) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET region = excluded.region")
            .execute(arguments: [id, region.rawValue, origin.rawValue])
    }

    public func premisesCount() throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM premises") ?? 0
    }

    public func premisesExists(_ id: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM premises WHERE id = ?)", arguments: [id]) ?? false
    }

    public func premisesRegion(_ id: String) throws -> CSPRegion? {
        try String.fetchOne(db, sql: "SELECT region FROM premises WHERE id = ?", arguments: [id]).flatMap(CSPRegion.init(text:))
    }

    // MARK: devices

    public func allDevices() throws -> [Device] {
        var devices: [Device] = []
        let rows = try Row.fetchCursor(db, sql: "SELECT id, type, premises, model, owner, pre_notified, status, mode, hub, firmware, smets_version, region FROM device ORDER BY id")
        while let row = try rows.next() {
            if let device = Self.device(from: row) { devices.append(device) }
        }
        return devices
    }

    public func device(_ id: EUI64) throws -> Device? {
        try Row.fetchOne(db, sql: "SELECT id, type, premises, model, owner, pre_notified, status, mode, hub, firmware, smets_version, region FROM device WHERE id = ?",
                         arguments: [Int64(bitPattern: id.rawValue)]).flatMap(Self.device(from:))
    }

    public func deviceExists(_ id: EUI64) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM device WHERE id = ?)", arguments: [Int64(bitPattern: id.rawValue)]) ?? false
    }

    /// Inserts `device`, or replaces it wholesale.
    public func save(_ device: Device, origin: DeviceOrigin) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO device (id, type, premises, model, owner, pre_notified, status, mode, hub, firmware, smets_version, region, origin)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET type = excluded.type, premises = excluded.premises, model = excluded.model,
              owner = excluded.owner, pre_notified = excluded.pre_notified, status = excluded.status, mode = excluded.mode,
              hub = excluded.hub, firmware = excluded.firmware, smets_version = excluded.smets_version, region = excluded.region
            """)
        try statement.execute(arguments: [
            Int64(bitPattern: device.id.rawValue), Int(device.type.rawValue), device.premisesID, device.modelKey, device.owner,
            device.preNotified.rawValue, device.status.rawValue, Int(device.mode.rawValue),
            device.hub.map { Int64(bitPattern: $0.rawValue) }, Int64(device.firmwareVersion.rawValue),
            device.smetsVersion?.rawValue, device.region.rawValue, origin.rawValue,
        ])
    }

    /// Removes a device and every record it held.
    public func removeDevice(_ id: EUI64) throws {
        let key = Int64(bitPattern: id.rawValue)
        for table in ["device WHERE id", "consumption_day WHERE device", "message WHERE device", "top_up WHERE device",
                      "debt_record WHERE device", "consumer_setting WHERE device", "prepayment WHERE device"] {
            try db.execute(sql: "DELETE FROM \(table) = ?", arguments: [key])
        }
    }

    static func device(from row: Row) -> Device? {
        let rawID: Int64 = row[0]
        let rawType: Int = row[1]
        let preNotified: String = row[5]
        let status: String = row[6]
        let mode: Int = row[7]
        let hub: Int64? = row[8]
        let firmware: Int64 = row[9]
        let smetsVersion: String? = row[10]
        let region: String = row[11]
        guard let type = DeviceType(rawValue: UInt8(clamping: rawType)),
              let preNotifiedVersion = SMETSVersion(text: preNotified),
              let inventory = InventoryStatus(text: status),
              let smetsMode = SMETSMode(rawValue: UInt8(clamping: mode)),
              let cspRegion = CSPRegion(text: region)
        else { return nil }
        return Device(id: EUI64(UInt64(bitPattern: rawID)), type: type, premisesID: row[2], modelKey: row[3], owner: row[4],
                      preNotified: preNotifiedVersion, status: inventory, mode: smetsMode,
                      hub: hub.map { EUI64(UInt64(bitPattern: $0)) }, firmwareVersion: FirmwareVersion(UInt32(truncatingIfNeeded: firmware)),
                      smetsVersion: smetsVersion.flatMap(SMETSVersion.init(text:)), region: cspRegion)
    }

    // MARK: jobs

    public func insertJob(due: Timestamp, kind: String, payload: String) throws -> ScheduledJob {
        try db.cachedStatement(sql: "INSERT INTO job (due, kind, payload) VALUES (?, ?, ?)").execute(arguments: [due.unixMillis, kind, payload])
        return ScheduledJob(id: db.lastInsertedRowID, due: due, kind: kind, payload: payload)
    }

    public func deleteJob(_ id: Int64) throws {
        try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [id])
    }

    /// The jobs of one kind, through the `job_by_kind` index: a device's firmware activation is
    /// looked up among a few activation jobs, not among every pending Change of Tenancy.
    public func jobs(kind: String) throws -> [ScheduledJob] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT id, due, kind, payload FROM job WHERE kind = ?"), arguments: [kind]).map(Self.job)
    }

    public func allJobs() throws -> [ScheduledJob] {
        try Row.fetchAll(db, sql: "SELECT id, due, kind, payload FROM job").map(Self.job)
    }

    private static func job(_ row: Row) -> ScheduledJob {
        ScheduledJob(id: row[0], due: Timestamp(unixMillis: row[1]), kind: row[2], payload: row[3])
    }
}

extension StoreTransaction {
    /// The Change of Tenancy date of every premises that has one.
    public func tenancyChanges() throws -> [String: Timestamp] {
        var result: [String: Timestamp] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT id, tenancy_changed_at FROM premises WHERE tenancy_changed_at IS NOT NULL") {
            result[row[0]] = Timestamp(unixMillis: row[1])
        }
        return result
    }

    public func setTenancyChanged(premises: String, at time: Timestamp) throws {
        try db.cachedStatement(sql: "UPDATE premises SET tenancy_changed_at = ? WHERE id = ?").execute(arguments: [time.unixMillis, premises])
    }

    public func setSupplier(premises: String, supplier: String) throws {
        try db.cachedStatement(sql: "UPDATE premises SET supplier = ? WHERE id = ?").execute(arguments: [supplier, premises])
    }

    public func supplier(premises: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT supplier FROM premises WHERE id = ?", arguments: [premises])
    }

    /// The supplier's name and telephone number the premises' meter holds; nil leaves one as it is.
    public func setSupplierContact(premises: String, name: String?, telephone: String?) throws {
        try db.cachedStatement(sql: "UPDATE premises SET supplier_name = coalesce(?, supplier_name), supplier_telephone = coalesce(?, supplier_telephone) WHERE id = ?").execute(
                       arguments: [name, telephone, premises])
    }

    public func supplierContact(premises: String) throws -> (name: String?, telephone: String?) {
        guard let row = try Row.fetchOne(db, sql: "SELECT supplier_name, supplier_telephone FROM premises WHERE id = ?", arguments: [premises]) else {
            return (nil, nil)
        }
        return (row["supplier_name"], row["supplier_telephone"])
    }
}
