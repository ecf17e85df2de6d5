import Foundation
import GRDB
import SMETSCore

/// The daemon's durable state: one SQLite file (WAL, `synchronous=FULL`, `secure_delete=ON`).
///
/// Every write runs in one transaction and returns only once SQLite has fsync'd the WAL, so a client
/// told "done" can pull the plug. `secure_delete` zeroes the bytes of deleted rows in the pages; with
/// `scrub()` (a truncating checkpoint, made durable) nothing of cleared occupant data stays in the WAL
/// either, and opening the store scrubs what a crash between a clearing commit and its scrub left.
/// docs/reliability.md ("Crash consistency") has the campaigns that check this.
public final class StateStore: Sendable {
    public static let fileName = "smetsd.sqlite"
    public let path: String
    let pool: DatabasePool
    let hooks: StoreHooks
    /// Whether writes succeed now (a full, read-only or failing disk degrades it; see StoreHealth).
    public let health = StoreHealth()

    /// Opens (creating if needed) the state in `directory` and brings its schema up to date.
    /// - Parameters:
    ///   - directory: the state folder.
    ///   - hooks: fault injection for tests (a write that fails or waits on demand); none by default.
    public init(directory: String, hooks: StoreHooks = StoreHooks()) throws {
        self.hooks = hooks
        path = directory.hasSuffix("/") ? directory + Self.fileName : directory + "/" + Self.fileName
        var configuration = Configuration()
        configuration.label = "smetsd.state"
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // FULL: a WAL commit is fsync'd before it returns; acknowledged means on disk.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Deleted content is overwritten with zeros, so cleared occupant data leaves no bytes behind.
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        // GRDB sets the writer to synchronous=NORMAL when it enables WAL, after prepareDatabase ran.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try Self.migrator.migrate(pool)
        // A kill between a clearing commit and its scrub leaves the old page images (the cleared rows)
        // in the WAL, and SQLite keeps that WAL until a checkpoint: scrub before anything else.
        try scrub()
    }

    /// Runs `body` in one write transaction; it is durable when this returns.
    public func write<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        do {
            let result = try pool.write { db in
                let result = try body(StoreTransaction(db: db))
                // After the body, so that a failure here rolls back everything the body wrote.
                try hooks.beforeCommit?()
                return result
            }
            health.succeeded()
            return result
        } catch {
            if let fault = StorageFault(error) { health.failed(fault, error) }
            throw error
        }
    }

    /// The smallest durable write (one row of `meta`, fsync'd): whether the disk takes writes again.
    /// The daemon runs it every few seconds while the store is degraded, so writes resume by
    /// themselves once space returns, without waiting for a caller to try.
    public func probe() throws {
        try write { transaction in
            try transaction.db.execute(sql: "INSERT INTO meta (key, value) VALUES ('probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                       arguments: [String(Date().timeIntervalSince1970)])
        }
    }

    /// Runs `body` on a consistent snapshot.
    public func read<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        try pool.read { db in try body(StoreTransaction(db: db)) }
    }

    /// Moves every WAL frame into the database and truncates the WAL to zero bytes, so that no old
    /// page image (holding data since deleted) survives in it.
    public func scrub() throws {
        do {
            try pool.writeWithoutTransaction { db in
                _ = try db.checkpoint(.truncate)
                // SQLite truncates the WAL without an fsync: after a power cut the file could come back at
                // its old size, old frames and all. Syncing it makes the truncation durable.
                try Self.sync(path + "-wal")
            }
        } catch {
            if let fault = StorageFault(error) { health.failed(fault, error) }
            throw error
        }
    }

    /// fsync of the file at `path` (any descriptor of a file flushes all of it); nothing when it is
    /// not there.
    static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return }
            throw StoreSyncError(path: path, code: errno)
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StoreSyncError(path: path, code: errno) }
    }

    /// The value of `PRAGMA name` on the writing connection (`synchronous`, `secure_delete`,
    /// `journal_mode`, ...), as text; nil when `name` is not a bare pragma name or has no value.
    public func pragma(_ name: String) throws -> String? {
        guard !name.isEmpty, name.allSatisfy({ $0 == "_" || ($0.isASCII && $0.isLetter) }) else { return nil }
        return try pool.writeWithoutTransaction { db in
            switch try DatabaseValue.fetchOne(db, sql: "PRAGMA \(name)")?.storage {
            case .int64(let value): String(value)
            case .double(let value): String(value)
            case .string(let value): value
            case .blob, .null, nil: nil
            }
        }
    }

    /// Schema versions, in order. A shipped migration is never edited; a change is a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                CREATE TABLE premises (
                    id TEXT PRIMARY KEY, region TEXT NOT NULL, origin TEXT NOT NULL,
                    supplier TEXT, tenancy_changed_at INTEGER
                ) WITHOUT ROWID;
                CREATE TABLE device (
                    id INTEGER PRIMARY KEY, type INTEGER NOT NULL, premises TEXT NOT NULL, model TEXT NOT NULL,
                    owner TEXT NOT NULL, pre_notified TEXT NOT NULL, status TEXT NOT NULL, mode INTEGER NOT NULL,
                    hub INTEGER, firmware INTEGER NOT NULL, smets_version TEXT, region TEXT NOT NULL,
                    origin TEXT NOT NULL
                );
                CREATE INDEX device_by_premises ON device (premises);
                CREATE TABLE consumption_day (
                    device INTEGER NOT NULL, day INTEGER NOT NULL, amount INTEGER NOT NULL,
                    PRIMARY KEY (device, day)
                ) WITHOUT ROWID;
                CREATE TABLE message (
                    device INTEGER NOT NULL, message_id INTEGER NOT NULL, control INTEGER NOT NULL,
                    start_time INTEGER NOT NULL, duration INTEGER NOT NULL, text TEXT NOT NULL,
                    received_at INTEGER NOT NULL, confirmed_at INTEGER,
                    PRIMARY KEY (device, message_id)
                ) WITHOUT ROWID;
                CREATE TABLE top_up (
                    device INTEGER NOT NULL, seq INTEGER NOT NULL, code TEXT NOT NULL, amount INTEGER NOT NULL,
                    time INTEGER NOT NULL, source INTEGER NOT NULL,
                    PRIMARY KEY (device, seq)
                ) WITHOUT ROWID;
                CREATE UNIQUE INDEX top_up_code ON top_up (device, code);
                CREATE TABLE debt_record (
                    device INTEGER NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL, amount INTEGER NOT NULL,
                    debt_type INTEGER NOT NULL, outstanding INTEGER NOT NULL,
                    PRIMARY KEY (device, seq)
                ) WITHOUT ROWID;
                CREATE TABLE consumer_setting (
                    device INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                    PRIMARY KEY (device, key)
                ) WITHOUT ROWID;
                CREATE TABLE prepayment (
                    device INTEGER PRIMARY KEY, credit INTEGER NOT NULL, emergency_credit INTEGER NOT NULL,
                    debt INTEGER NOT NULL
                );
                CREATE TABLE job (
                    id INTEGER PRIMARY KEY, due INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2-firmware") { db in try FirmwareSchema.create(db) }
        // When the consumer made a setting, so that a Change of Tenancy at T clears only those made up to T.
        migrator.registerMigration("v3-consumer-setting-time") { db in
            try db.execute(sql: "ALTER TABLE consumer_setting ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0")
        }
        // A meter's time-based debt (added each day) and payment-based recovery (a share of each top-up).
        migrator.registerMigration("v4-debt-recovery") { db in
            try db.execute(sql: """
                ALTER TABLE prepayment ADD COLUMN debt_per_day INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE prepayment ADD COLUMN recovery_percent INTEGER NOT NULL DEFAULT 0;
                -- The daily rollover reads only the meters that accrue, not every meter of a large lab.
                CREATE INDEX prepayment_accruing ON prepayment (device) WHERE debt_per_day > 0;
                """)
        }
        // The supplier's name and telephone number as the premises' meter holds them (DUIS 3.4,
        // supplier.change), so that they survive a restart.
        migrator.registerMigration("v5-supplier-contact") { db in
            try db.execute(sql: """
                ALTER TABLE premises ADD COLUMN supplier_name TEXT;
                ALTER TABLE premises ADD COLUMN supplier_telephone TEXT;
                """)
        }
        // The DUIS work the DCC holds across a restart: DSP-future-dated requests until their
        // ExecutionDateTime, and CV 4 pre-commands until their signed return or expiry. The request
        // document is kept as received, so the held work is rebuilt by the same parser.
        migrator.registerMigration("v6-duis-held") { db in
            try db.execute(sql: """
                CREATE TABLE duis_held (
                    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, request_id TEXT NOT NULL, device TEXT NOT NULL,
                    variant TEXT NOT NULL, due INTEGER NOT NULL, document BLOB NOT NULL, payload BLOB
                );
                CREATE INDEX duis_held_by_device ON duis_held (device, variant);
                """)
        }
        // A job's ID is never handed out again. Without AUTOINCREMENT SQLite gave a new row the
        // highest ID + 1, so a job replacing the newest one (a firmware schedule replaced during a
        // transfer) took the ID of the job it replaced; when the replaced job, already taken to run,
        // then deleted its row by ID, it deleted the new schedule (found by scripts/crash-campaign).
        migrator.registerMigration("v7-job-ids-never-reused") { db in
            try db.execute(sql: """
                CREATE TABLE job_new (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, due INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL
                );
                INSERT INTO job_new (id, due, kind, payload) SELECT id, due, kind, payload FROM job;
                DROP TABLE job;
                ALTER TABLE job_new RENAME TO job;
                """)
        }
        // Held DUIS work is deleted by ID once it ran, expired or was cancelled, so its IDs must not be
        // handed out again either (the hazard of v7: a row deleted and a new one inserted took the
        // deleted row's ID, and a late delete of the old work would take the new work with it).
        migrator.registerMigration("v8-duis-held-ids-never-reused") { db in
            try db.execute(sql: """
                CREATE TABLE duis_held_new (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, request_id TEXT NOT NULL, device TEXT NOT NULL,
                    variant TEXT NOT NULL, due INTEGER NOT NULL, document BLOB NOT NULL, payload BLOB
                );
                INSERT INTO duis_held_new SELECT id, kind, request_id, device, variant, due, document, payload FROM duis_held;
                DROP TABLE duis_held;
                ALTER TABLE duis_held_new RENAME TO duis_held;
                CREATE INDEX duis_held_by_device ON duis_held (device, variant);
                """)
        }
        // A firmware schedule replaces the device's earlier activation job, which was found by reading
        // every job: with thousands of pending Change of Tenancy jobs, a push to N devices read them
        // all N times inside its write transactions.
        migrator.registerMigration("v9-job-by-kind") { db in
            try db.execute(sql: "CREATE INDEX job_by_kind ON job (kind)")
        }
        return migrator
    }
}

/// A file of the state could not be synced to disk.
public struct StoreSyncError: Error, CustomStringConvertible {
    public let path: String
    public let code: Int32
    public var description: String { "could not sync \(path) to disk: \(String(cString: strerror(code)))" }
}

/// Where a device came from: the lab file, `lab.generate`, or `devices.create`.
public enum DeviceOrigin: String, Sendable {
    case lab, generated, api
}

/// Hooks into the store's write path, for fault-injection tests: a write that fails (as a full disk
/// or an EIO from fsync would) or that waits (to hold a write open while readers are checked).
public struct StoreHooks: Sendable {
    /// Runs inside every write transaction, after its changes and before the commit. Throwing rolls
    /// the whole transaction back; blocking holds the transaction open.
    public var beforeCommit: (@Sendable () throws -> Void)?

    public init(beforeCommit: (@Sendable () throws -> Void)? = nil) { self.beforeCommit = beforeCommit }
}
