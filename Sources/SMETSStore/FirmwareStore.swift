import Foundation
import GRDB
import SMETSCore

/// The firmware tables (migration `v2-firmware`).
///
/// - `firmware_image`: every Manufacturer Image the daemon has taken, once, keyed by its SHA-256
///   (lowercase hex), whatever the number of devices that downloaded it. The row is written in
///   the same fsync'd transaction as whatever refers to it, so it is there whole or not at all.
/// - `firmware_held`: the validated image a device holds until it activates it (DUIS CS06's
///   "image held"): its hash, the OTA header and signature it came with (so the exact file can be
///   rebuilt), its ImageUpgradeStatus and any scheduled activation time.
enum FirmwareSchema {
    static func create(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE firmware_image (
                hash TEXT PRIMARY KEY, manufacturer_image BLOB NOT NULL, size INTEGER NOT NULL, stored_at INTEGER NOT NULL
            );
            CREATE TABLE firmware_held (
                device INTEGER PRIMARY KEY, hash TEXT NOT NULL REFERENCES firmware_image (hash),
                file_version INTEGER NOT NULL, manufacturer_code INTEGER NOT NULL, image_type INTEGER NOT NULL,
                header BLOB NOT NULL, signature BLOB, status INTEGER NOT NULL, activate_at INTEGER, server INTEGER,
                received_at INTEGER NOT NULL
            );
            """)
    }
}

extension StoreTransaction {
    /// Stores a Manufacturer Image under its hash, unless it is already there; true if it was new.
    @discardableResult
    public func saveFirmwareImage(hash: String, manufacturerImage: [UInt8], at time: Timestamp) throws -> Bool {
        try db.execute(sql: "INSERT INTO firmware_image (hash, manufacturer_image, size, stored_at) VALUES (?, ?, ?, ?) ON CONFLICT(hash) DO NOTHING",
                       arguments: [hash, Data(manufacturerImage), manufacturerImage.count, time.unixMillis])
        return db.changesCount > 0
    }

    public func firmwareImage(hash: String) throws -> [UInt8]? {
        try Data.fetchOne(db, sql: "SELECT manufacturer_image FROM firmware_image WHERE hash = ?", arguments: [hash]).map { Array($0) }
    }

    public func firmwareImageExists(hash: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM firmware_image WHERE hash = ?)", arguments: [hash]) ?? false
    }

    /// The hash and size of every stored image.
    public func firmwareImages() throws -> [(hash: String, size: Int)] {
        try Row.fetchAll(db, sql: "SELECT hash, size FROM firmware_image ORDER BY hash").map { ($0[0], $0[1]) }
    }

    /// Records the image `device` now holds (replacing any it held before).
    public func saveHeldFirmware(_ held: HeldFirmware, device: EUI64, header: [UInt8], signature: [UInt8]?, at time: Timestamp) throws {
        try db.execute(sql: """
            INSERT INTO firmware_held (device, hash, file_version, manufacturer_code, image_type, header, signature, status, activate_at, server, received_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(device) DO UPDATE SET hash = excluded.hash, file_version = excluded.file_version,
              manufacturer_code = excluded.manufacturer_code, image_type = excluded.image_type, header = excluded.header,
              signature = excluded.signature, status = excluded.status, activate_at = excluded.activate_at,
              server = excluded.server, received_at = excluded.received_at
            """, arguments: [
                Self.key(device), held.hash, Int64(held.fileVersion.rawValue), Int(held.manufacturerCode), Int(held.imageType),
                Data(header), signature.map { Data($0) }, Int(held.status.rawValue), held.activateAt?.unixMillis,
                held.server.map(Self.key), time.unixMillis,
            ])
    }

    /// Changes the status and scheduled time of a held image; false if the device holds none.
    @discardableResult
    public func updateHeldFirmware(device: EUI64, status: ImageUpgradeStatus, activateAt: Timestamp?) throws -> Bool {
        try db.cachedStatement(sql: "UPDATE firmware_held SET status = ?, activate_at = ? WHERE device = ?").execute(
                       arguments: [Int(status.rawValue), activateAt?.unixMillis, Self.key(device)])
        return db.changesCount > 0
    }

    public func heldFirmware(device: EUI64) throws -> HeldFirmware? {
        try Row.fetchOne(db, sql: "SELECT hash, file_version, manufacturer_code, image_type, status, activate_at, server FROM firmware_held WHERE device = ?",
                         arguments: [Self.key(device)]).flatMap(Self.held(from:))
    }

    /// The OTA header and signature block a held image arrived with.
    public func heldFirmwareEnvelope(device: EUI64) throws -> (header: [UInt8], signature: [UInt8]?)? {
        try Row.fetchOne(db, sql: "SELECT header, signature FROM firmware_held WHERE device = ?", arguments: [Self.key(device)]).map { row in
            let header: Data = row[0]
            let signature: Data? = row[1]
            return (Array(header), signature.map { Array($0) })
        }
    }

    public func allHeldFirmware() throws -> [EUI64: HeldFirmware] {
        var result: [EUI64: HeldFirmware] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT hash, file_version, manufacturer_code, image_type, status, activate_at, server, device FROM firmware_held") {
            let device: Int64 = row[7]
            if let held = Self.held(from: row) { result[EUI64(UInt64(bitPattern: device))] = held }
        }
        return result
    }

    public func deleteHeldFirmware(device: EUI64) throws {
        try db.execute(sql: "DELETE FROM firmware_held WHERE device = ?", arguments: [Self.key(device)])
    }

    static func key(_ id: EUI64) -> Int64 { Int64(bitPattern: id.rawValue) }

    static func held(from row: Row) -> HeldFirmware? {
        let version: Int64 = row[1]
        let manufacturer: Int = row[2]
        let type: Int = row[3]
        let status: Int = row[4]
        let activateAt: Int64? = row[5]
        let server: Int64? = row[6]
        guard let upgradeStatus = ImageUpgradeStatus(rawValue: UInt8(clamping: status)) else { return nil }
        return HeldFirmware(hash: row[0], fileVersion: FirmwareVersion(UInt32(truncatingIfNeeded: version)),
                            manufacturerCode: UInt16(truncatingIfNeeded: manufacturer), imageType: UInt16(truncatingIfNeeded: type),
                            status: upgradeStatus, activateAt: activateAt.map { Timestamp(unixMillis: $0) },
                            server: server.map { EUI64(UInt64(bitPattern: $0)) })
    }
}
