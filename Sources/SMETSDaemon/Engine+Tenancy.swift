import SMETSCore
import SMETSRPC
import SMETSStore
import SMETSWire

/// What a display does with a PublishChangeOfTenancy when its implementation time comes.
struct PendingTenancyChange: Codable {
    var device: String
    var control: UInt32
    var providerID: UInt32
    var issuerEventID: UInt32
}

extension Engine {
    static let tenancyJob = "tenancy-change"

    /// The Change of Tenancy date of a premises, if it had one.
    func tenancyStart(premises: String) -> Timestamp? { state.withLock { $0.tenancyChangedAt[premises] } }

    /// A display accepted PublishChangeOfTenancy: it clears now, or schedules the clearing for the
    /// implementation time (a durable job, so it fires once even across restarts).
    func acceptChangeOfTenancy(device id: EUI64, from source: EUI64, change: PublishChangeOfTenancy) throws {
        let now = self.now()
        let due = change.implementationTime == 0 ? now : Timestamp(zigbeeUTC: change.implementationTime)
        let pending = PendingTenancyChange(device: id.description, control: change.tenancyChangeControl,
                                           providerID: change.providerID, issuerEventID: change.issuerEventID)
        if due <= now {
            try clearForTenancy(pending, now: now)
            return
        }
        let payload = String(decoding: try JSONEncoderShim.encode(pending), as: UTF8.self)
        try state.withLock { state in
            let job = try store.write { try $0.insertJob(due: due, kind: Self.tenancyJob, payload: payload) }
            state.schedule.insert(job)
            rearm(state)
        }
        events.publish("tenancy.scheduled", device: id, time: now, data: ["implementationTime": .string(due.rfc3339), "control": .int(Int64(change.tenancyChangeControl))])
    }

    func runTenancyJob(_ job: ScheduledJob, state: inout State, now: Timestamp) throws {
        guard let pending = try? JSONEncoderShim.decode(PendingTenancyChange.self, from: Array(job.payload.utf8)),
              let id = EUI64(pending.device), let device = state.devices[id], let model = state.lab.models[device.modelKey] else {
            try store.write { try $0.deleteJob(job.id) }
            return
        }
        let categories = TenancyRules.categoriesToClear(control: pending.control, keeps: model.keepsSet)
        let removed = try store.write { tx -> [DataCategory: Int] in
            try tx.deleteJob(job.id)
            return try tx.clear(categories, device: id)
        }
        try store.scrub()
        publishCleared(id, categories: categories, removed: removed, now: now)
    }

    /// Clears, in one transaction, what `pending.control` selects and the device's model keeps; then
    /// truncates the WAL so no old page image of the cleared rows survives there.
    func clearForTenancy(_ pending: PendingTenancyChange, now: Timestamp) throws {
        guard let id = EUI64(pending.device), let device = device(id), let model = model(for: device) else { return }
        let categories = TenancyRules.categoriesToClear(control: pending.control, keeps: model.keepsSet)
        let removed = try store.write { tx in try tx.clear(categories, device: id) }
        try store.scrub()
        publishCleared(id, categories: categories, removed: removed, now: now)
    }

    private func publishCleared(_ id: EUI64, categories: Set<DataCategory>, removed: [DataCategory: Int], now: Timestamp) {
        var data: [String: JSONValue] = ["categories": .array(categories.map(\.rawValue).sorted().map { .string($0) })]
        for (category, count) in removed { data["cleared_\(category.rawValue)"] = .int(Int64(count)) }
        events.publish("tenancy.cleared", device: id, time: now, data: data, message: "cleared the prior occupant's data")
    }

    func acceptChangeOfSupplier(device id: EUI64, change: PublishChangeOfSupplier) throws {
        guard let device = device(id) else { return }
        let supplier = upperHex(change.proposedProviderID, width: 8)
        try store.write { try $0.setSupplier(premises: device.premisesID, supplier: supplier) }
        events.publish("supplier.changed", device: id, time: now(), data: ["proposedProvider": .string(supplier)])
    }
}

import Foundation

/// JSON for job payloads, kept in one place.
enum JSONEncoderShim {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try JSONEncoder().encode(value)) }
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T { try JSONDecoder().decode(type, from: Data(bytes)) }
}
