import Foundation
import GRDB
import SMETSCore

/// One piece of DUIS work the DCC holds (migration `v6-duis-held`).
public struct DUISHeldRow: Sendable, Hashable {
    public enum Kind: String, Sendable {
        /// A DSP-future-dated request, due at its ExecutionDateTime (virtual clock).
        case request
        /// A CV 4 pre-command, due to expire at `due` (real Unix ms); `payload` is its bytes.
        case preCommand
    }

    public var id: Int64
    public var kind: Kind
    public var requestID: String
    public var device: String
    public var variant: String
    public var due: Timestamp
    public var document: [UInt8]
    public var payload: [UInt8]?

    public init(id: Int64 = 0, kind: Kind, requestID: String, device: String, variant: String, due: Timestamp, document: [UInt8], payload: [UInt8]? = nil) {
        self.id = id; self.kind = kind; self.requestID = requestID; self.device = device; self.variant = variant
        self.due = due; self.document = document; self.payload = payload
    }
}

extension StoreTransaction {
    /// Keeps `row`; its new ID.
    public func insertDUISHeld(_ row: DUISHeldRow) throws -> Int64 {
        try db.cachedStatement(sql: "INSERT INTO duis_held (kind, request_id, device, variant, due, document, payload) VALUES (?, ?, ?, ?, ?, ?, ?)").execute(
                       arguments: [row.kind.rawValue, row.requestID, row.device, row.variant, row.due.unixMillis, Data(row.document), row.payload.map { Data($0) }])
        return db.lastInsertedRowID
    }

    public func deleteDUISHeld(_ ids: [Int64]) throws {
        for id in ids { try db.execute(sql: "DELETE FROM duis_held WHERE id = ?", arguments: [id]) }
    }

    /// Every held row, oldest first; a row of an unknown kind is skipped (a later version's).
    public func allDUISHeld() throws -> [DUISHeldRow] {
        try Row.fetchAll(db, sql: "SELECT id, kind, request_id, device, variant, due, document, payload FROM duis_held ORDER BY id").compactMap { row in
            guard let kind = DUISHeldRow.Kind(rawValue: row[1]) else { return nil }
            let document: Data = row[6]
            let payload: Data? = row[7]
            return DUISHeldRow(id: row[0], kind: kind, requestID: row[2], device: row[3], variant: row[4], due: Timestamp(unixMillis: row[5]),
                               document: [UInt8](document), payload: payload.map { [UInt8]($0) })
        }
    }
}
