import SMETSCore
import SMETSDevices
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
    /// The Change of Tenancy date of a premises once it has passed: meters serve HAN devices nothing
    /// from before it.
    func tenancyStart(premises: String) -> Timestamp? {
        state.read { state in
            guard let date = state.tenancyChangedAt[premises], date <= state.clock.now(real: realNow()) else { return nil }
            return date
        }
    }

    public struct TenancyChangeResult: Sendable {
        public var premises: [String]
        public var implementationTime: Timestamp
        public var notified: [EUI64]
        public var cleared: [EUI64: [DataCategory: Int]]
        public var pending: Bool
    }

    /// Change of Tenancy for whole premises, as ECS12 / GCS09 start it: the meter side records the
    /// date and sends PublishChangeOfTenancy to every display on the HAN. At the implementation time T
    /// (now, or a past time, clears at once; a later one is a durable job per device) each display
    /// clears what the bitmap selects and its model clears, and the meters their copies of the
    /// supplier's messages, of what was recorded up to T: the new occupant's data is never touched.
    public func changeTenancy(premises ids: [String], control: UInt32, implementationTime: Timestamp?) throws -> TenancyChangeResult {
        // Over thousands of premises, seconds of planning and clearing: on a bulk thread, below the event loops.
        try BulkWork.run(nice: lab.settings.bulkThreadNice) { [self] in try changeTenancyNow(premises: ids, control: control, implementationTime: implementationTime) }
    }

    private func changeTenancyNow(premises ids: [String], control: UInt32, implementationTime: Timestamp?) throws -> TenancyChangeResult {
        let now = self.now()
        let due = implementationTime ?? now
        var frames: [OutgoingZCL] = []
        var plans: [(EUI64, Set<DataCategory>, PendingTenancyChange)] = []
        var meters: [(EUI64, PendingTenancyChange)] = []
        var traced: [EUI64] = []
        let issuerEvent = UInt32(truncatingIfNeeded: now.unixSeconds)
        let providers = try store.read { tx in try ids.map { try tx.supplier(premises: $0).flatMap { UInt32($0, radix: 16) } ?? 0 } }
        // Planned on a snapshot, outside the state lock: over 10,000 premises this loop takes long
        // enough to stall every HAN read if it held the lock.
        do {
            let state = snapshot()
            for (premises, provider) in zip(ids, providers) {
                guard let members = state.premises[premises] else { throw DomainError(.premisesNotFound, "no premises '\(premises)'") }
                let devices = members.compactMap { state.devices[$0] }
                guard let meter = devices.first(where: { $0.type == .esme }) ?? devices.first(where: { $0.type == .gpf }) else {
                    throw DomainError(.invalidState, "premises \(premises) has no ESME or GPF to send PublishChangeOfTenancy")
                }
                traced += devices.map(\.id)
                meters += devices.filter(\.type.isMeterSide).map {
                    ($0.id, PendingTenancyChange(device: $0.id.description, control: control, providerID: provider, issuerEventID: issuerEvent))
                }
                let command = PublishChangeOfTenancy(providerID: provider, issuerEventID: issuerEvent, tariffType: 0,
                                                     implementationTime: implementationTime?.zigbeeUTC ?? 0, tenancyChangeControl: control)
                for display in devices where display.type.isDisplay && display.hub != nil {
                    frames.append(OutgoingZCL(from: meter.id, to: display.id, cluster: ZCLClusterID.deviceManagement,
                                              frame: ZCLFrame(command, sequenceNumber: UInt8(truncatingIfNeeded: frames.count), disableDefaultResponse: true)))
                    let clears = state.lab.models[display.modelKey]?.clearsSet ?? []
                    plans.append((display.id, TenancyRules.categoriesToClear(control: control, keeps: clears),
                                  PendingTenancyChange(device: display.id.description, control: control, providerID: provider, issuerEventID: issuerEvent)))
                }
            }
        }
        var cleared: [EUI64: [DataCategory: Int]] = [:]
        if due <= now {
            cleared = try serialized { state in
                let snapshot = state
                let result = try store.write { tx -> [EUI64: [DataCategory: Int]] in
                    for premises in ids { try tx.setTenancyChanged(premises: premises, at: due) }
                    var clearing = plans.map { (device: $0.0, categories: $0.1) }
                    clearing += meters.map { (device: $0.0, categories: TenancyRules.meterCategoriesToClear(control: control)) }
                    // Every device of the call in this one transaction, table by table (see `clear`).
                    let removed = try tx.clear(clearing, recordedUpTo: due) { Self.consumptionAfter(due, display: $0, in: snapshot, now: now) }
                    var result: [EUI64: [DataCategory: Int]] = [:]
                    for (id, categories, _) in plans {
                        result[id] = Dictionary(uniqueKeysWithValues: categories.map { ($0, removed[id]?[$0] ?? 0) })
                    }
                    return result
                }
                for premises in ids { state.tenancyChangedAt[premises] = due }
                traces.forget(traced, recordedUpTo: now)
                return result
            }
            try store.scrub()
            emit(frames, deliver: false)
            for (id, categories, _) in plans { publishCleared(id, categories: categories, removed: cleared[id] ?? [:], now: now) }
        } else {
            emit(frames, deliver: false)
            try serialized { state in
                let jobs = try store.write { tx -> [ScheduledJob] in
                    for premises in ids { try tx.setTenancyChanged(premises: premises, at: due) }
                    return try (plans.map(\.2) + meters.map(\.1)).map { pending in
                        try tx.insertJob(due: due, kind: JobKind.tenancyChange.rawValue, payload: String(decoding: try JSONEncoderShim.encode(pending), as: UTF8.self))
                    }
                }
                for premises in ids { state.tenancyChangedAt[premises] = due }
                for job in jobs { state.schedule.insert(job) }
                rearm(state)
            }
        }
        for premises in ids {
            events.publish(.tenancyChanged, time: now, data: ["premises": .string(premises), "implementationTime": .string(due.rfc3339),
                                                               "control": .int(Int64(control)), "displays": .int(Int64(plans.count))])
        }
        return TenancyChangeResult(premises: ids, implementationTime: due, notified: plans.map(\.0), cleared: cleared, pending: due > now)
    }

    /// The display's consumption on the day that contains the Change of Tenancy, from its time on
    /// (nil when that day has not ended yet, so there is no stored total to split).
    static func consumptionAfter(_ change: Timestamp, display: EUI64, in state: State, now: Timestamp) -> Int64? {
        guard change.dayNumber < now.dayNumber, let device = state.devices[display], device.type.isDisplay,
              let meter = state.premises[device.premisesID]?.first(where: { state.devices[$0]?.type == .esme }) else { return nil }
        return LoadProfile.dailyTotal(device: meter, type: .esme, day: change.dayNumber, since: change)
    }

    /// Change of Supplier: the meter sends PublishChangeOfSupplier; the new provider is recorded and
    /// the devices stay joined, reachable and upgradable. DUIS 3.4 (Update Supplier Name) takes the
    /// same path with the current provider: the name and `telephone` (nil: the one held) are kept
    /// by the meter, durably, before the displays are sent them.
    public func changeSupplier(premises: String, provider: UInt32, name: String, telephone: String? = nil) throws -> [EUI64] {
        let now = self.now()
        let (meter, displays) = try state.read { state -> (Device, [Device]) in
            guard let members = state.premises[premises] else { throw DomainError(.premisesNotFound, "no premises '\(premises)'") }
            let devices = members.compactMap { state.devices[$0] }
            guard let meter = devices.first(where: { $0.type == .esme }) ?? devices.first(where: { $0.type == .gpf }) else {
                throw DomainError(.invalidState, "premises \(premises) has no ESME or GPF")
            }
            return (meter, devices.filter { $0.type.isDisplay && $0.hub != nil })
        }
        let (current, held) = try store.read { tx in
            (try tx.supplier(premises: premises).flatMap { UInt32($0, radix: 16) } ?? 0, try tx.supplierContact(premises: premises).telephone)
        }
        let contact = telephone ?? held ?? ""
        let command = PublishChangeOfSupplier(currentProviderID: current, issuerEventID: UInt32(truncatingIfNeeded: now.unixSeconds), tariffType: 0,
                                              proposedProviderID: provider, changeTime: now.zigbeeUTC, changeControl: 0,
                                              proposedProviderName: Array(name.utf8.prefix(16)), proposedProviderContactDetails: Array(contact.utf8.prefix(19)))
        try store.write { tx in
            try tx.setSupplier(premises: premises, supplier: upperHex(provider, width: 8))
            try tx.setSupplierContact(premises: premises, name: name, telephone: telephone)
        }
        emit(displays.map { OutgoingZCL(from: meter.id, to: $0.id, cluster: ZCLClusterID.deviceManagement, frame: ZCLFrame(command, sequenceNumber: 0, disableDefaultResponse: true)) })
        return displays.map(\.id)
    }

    /// A display accepted PublishChangeOfTenancy: it clears now, or schedules the clearing for the
    /// implementation time (a durable job, so it fires once even across restarts).
    func acceptChangeOfTenancy(device id: EUI64, from source: EUI64, change: PublishChangeOfTenancy) throws {
        let now = self.now()
        let due = change.implementationTime == 0 ? now : Timestamp(zigbeeUTC: change.implementationTime)
        let pending = PendingTenancyChange(device: id.description, control: change.tenancyChangeControl,
                                           providerID: change.providerID, issuerEventID: change.issuerEventID)
        if due <= now {
            try clearForTenancy(pending, cutoff: due, now: now)
            return
        }
        let payload = String(decoding: try JSONEncoderShim.encode(pending), as: UTF8.self)
        try serialized { state in
            let job = try store.write { try $0.insertJob(due: due, kind: JobKind.tenancyChange.rawValue, payload: payload) }
            state.schedule.insert(job)
            rearm(state)
        }
        events.publish(.tenancyScheduled, device: id, time: now, data: ["implementationTime": .string(due.rfc3339), "control": .int(Int64(change.tenancyChangeControl))])
    }

    func runTenancyJob(_ job: ScheduledJob, state: inout State, now: Timestamp) throws {
        guard let pending = try? JSONEncoderShim.decode(PendingTenancyChange.self, from: Array(job.payload.utf8)),
              let id = EUI64(pending.device), let device = state.devices[id] else {
            try store.write { try $0.deleteJob(job.id) }
            return
        }
        let categories = Self.tenancyCategories(device, model: state.lab.models[device.modelKey], control: pending.control)
        // What was recorded up to the implementation time goes, even when the job runs later (a clock
        // jump): what the new occupant's days recorded after it stays.
        let snapshot = state
        let removed = try store.write { tx -> [DataCategory: Int] in
            try tx.deleteJob(job.id)
            return try tx.clear([(id, categories)], recordedUpTo: job.due) { Self.consumptionAfter(job.due, display: $0, in: snapshot, now: now) }[id] ?? [:]
        }
        // The meter's job stands for the premises' other non-display devices in memory.
        let forgotten = device.type.isDisplay ? [id]
            : (state.premises[device.premisesID] ?? []).filter { state.devices[$0]?.type.isDisplay == false }
        traces.forget(forgotten, recordedUpTo: job.due)
        try store.scrub()
        if device.type.isDisplay { publishCleared(id, categories: categories, removed: removed, now: now) }
    }

    /// What `device` clears for a PublishChangeOfTenancy with `control`: a display what the bitmap
    /// selects among what its model clears; a meter its copies of the supplier's messages.
    static func tenancyCategories(_ device: Device, model: DeviceModel?, control: UInt32) -> Set<DataCategory> {
        device.type.isDisplay ? TenancyRules.categoriesToClear(control: control, keeps: model?.clearsSet ?? [])
            : TenancyRules.meterCategoriesToClear(control: control)
    }

    /// A display given PublishChangeOfTenancy over the HAN with an implementation time now or past:
    /// clears, in one transaction, what was recorded up to then; then truncates the WAL so no old
    /// page image of the cleared rows survives there.
    func clearForTenancy(_ pending: PendingTenancyChange, cutoff: Timestamp, now: Timestamp) throws {
        guard let id = EUI64(pending.device), let device = device(id) else { return }
        let categories = Self.tenancyCategories(device, model: model(for: device), control: pending.control)
        let snapshot = snapshot()
        let removed = try store.write { tx in
            try tx.clear([(id, categories)], recordedUpTo: cutoff) { Self.consumptionAfter(cutoff, display: $0, in: snapshot, now: now) }[id] ?? [:]
        }
        traces.forget([id], recordedUpTo: now)
        try store.scrub()
        publishCleared(id, categories: categories, removed: removed, now: now)
    }

    func publishCleared(_ id: EUI64, categories: Set<DataCategory>, removed: [DataCategory: Int], now: Timestamp) {
        var data: [String: EventValue] = ["categories": .array(categories.map(\.rawValue).sorted().map { .string($0) })]
        for (category, count) in removed { data["cleared_\(category.rawValue)"] = .int(Int64(count)) }
        events.publish(.tenancyCleared, device: id, time: now, data: data, message: "cleared the prior occupant's data")
    }

    func acceptChangeOfSupplier(device id: EUI64, change: PublishChangeOfSupplier) throws {
        guard let device = device(id) else { return }
        let supplier = upperHex(change.proposedProviderID, width: 8)
        try store.write { try $0.setSupplier(premises: device.premisesID, supplier: supplier) }
        events.publish(.supplierChanged, device: id, time: now(), data: ["proposedProvider": .string(supplier),
                                                                          "name": .string(String(decoding: change.proposedProviderName, as: UTF8.self)),
                                                                          "telephone": .string(String(decoding: change.proposedProviderContactDetails, as: UTF8.self))])
    }
}

import Foundation

/// JSON for job payloads, kept in one place.
enum JSONEncoderShim {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try JSONEncoder().encode(value)) }
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T { try JSONDecoder().decode(type, from: Data(bytes)) }
}

extension Engine {
    /// The consumer changes settings on a display (budgets, alerts, brightness): consumer data that a
    /// Change of Tenancy clears (bit 9) where the model keeps it. The ``ConsumerSettings`` machine
    /// decides; returns every setting held after.
    public func setConsumerSettings(_ id: EUI64, _ changes: [String: String]) throws -> [String: String] {
        let device = try requireDevice(id)
        guard device.type.isDisplay else { throw DomainError(.invalidState, "\(id) is a \(device.type); consumer settings are made on a PPMID or an IHD") }
        let model = model(for: device)
        let machine = ConsumerSettings(model: device.modelKey, manufacturerCode: model?.manufacturer.numericCode)
        let keeps = model?.keepsSet.contains(.consumerData) == true
        let now = self.now()
        let settings = changes.sorted { $0.key < $1.key }.map { ConsumerSettings.Setting(name: $0.key, value: $0.value) }
        let (actions, held) = try runConsumerSettings(machine, device: id) { .set(settings, held: $0, keepsConsumerData: keeps, now: now) }
        for action in actions {
            if case .refuse(let refusal) = action { throw DomainError(.invalidState, refusal.description) }
        }
        publishSettingsChanged(actions, device: id, now: now)
        return held
    }

    /// Write Attributes of a display's consumer settings over the HAN: the Write Attributes Response.
    func writeConsumerSettings(_ write: WriteAttributes, manufacturerCode: UInt16?, device: Device, header: ZCLHeader) -> [ZCLFrame] {
        let model = model(for: device)
        let machine = ConsumerSettings(model: device.modelKey, manufacturerCode: model?.manufacturer.numericCode)
        let keeps = model?.keepsSet.contains(.consumerData) == true
        let now = self.now()
        let input = { (held: [String: String]) in
            ConsumerSettings.Input.writeAttributes(write, manufacturerCode: manufacturerCode, held: held, keepsConsumerData: keeps, now: now)
        }
        let actions: [ConsumerSettings.Action]
        do {
            actions = try runConsumerSettings(machine, device: device.id, input).actions
        } catch {
            logStoreFailure(device: device.id, command: "WriteAttributes", status: .failure, error: error)
            actions = machine.storeFailed(input([:]))
        }
        publishSettingsChanged(actions, device: device.id, now: now)
        let responseHeader = header.response(frameType: .global, commandID: ZCLGlobalCommandID.writeAttributesResponse)
        return actions.compactMap { action in
            guard case .respond(let response) = action else { return nil }
            return ZCLFrame(header: responseHeader, payload: response.encoded())
        }
    }

    /// Reads the settings held, asks the machine and commits what it keeps, in one transaction;
    /// returns its actions and the settings held after.
    private func runConsumerSettings(_ machine: ConsumerSettings, device id: EUI64,
                                     _ input: ([String: String]) -> ConsumerSettings.Input) throws -> (actions: [ConsumerSettings.Action], held: [String: String]) {
        try serialized { _ in
            try store.write { tx in
                let actions = machine.receive(input(try tx.consumerSettings(device: id)))
                for case let .persist(setting, time) in actions {
                    try tx.saveConsumerSetting(device: id, key: setting.name, value: setting.value, at: time)
                }
                return (actions, try tx.consumerSettings(device: id))
            }
        }
    }

    private func publishSettingsChanged(_ actions: [ConsumerSettings.Action], device id: EUI64, now: Timestamp) {
        for case .changed(let names) in actions {
            events.publish(.displaySettingsChanged, device: id, time: now, data: ["changed": .array(names.map { .string($0) })])
        }
    }

    public func consumerSettings(_ id: EUI64) throws -> [String: String] {
        _ = try requireDevice(id)
        return try store.read { try $0.consumerSettings(device: id) }
    }

    /// The supplier sets a meter's debt, its daily time-based debt and the share of each top-up
    /// that recovers it (nil: unchanged); the ``Prepayment`` machine decides. Returns the balances after.
    public func configureDebt(_ id: EUI64, debt: Int32?, perDay: Int32?, recoveryPercent: UInt8?) throws -> Prepayment.Balance {
        let device = try requireDevice(id)
        guard device.type.isMeterSide else { throw DomainError(.invalidState, "\(id) is a \(device.type); debt is held by an ESME or a GPF") }
        return try serialized { _ in
            try store.write { tx -> Prepayment.Balance in
                let held = try tx.prepayment(device: id).map(Prepayment.Balance.init)
                for case .persist(let change) in Prepayment(device: id).receive(.configureDebt(debt: debt, perDay: perDay, recoveryPercent: recoveryPercent, balance: held)) {
                    try Self.apply(change, device: id, tx: tx)
                }
                return try tx.prepayment(device: id).map(Prepayment.Balance.init) ?? Prepayment.Balance(credit: 0, emergencyCredit: 0, debt: 0)
            }
        }
    }
}
